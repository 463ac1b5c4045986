"""The Ray-compatible module-level API: init/shutdown and the calls on refs and actors.

Process-wide state lives in one ``_Session``; ``init`` builds it (starting an embedded
cluster or connecting to a running one), ``shutdown`` tears it down, also at exit.
"""
from __future__ import annotations

import atexit
import concurrent.futures
import logging
import os
import sys
import threading
import uuid

from actorium.core import launcher
from actorium.core import options as opts
from actorium.core.actor import ActorClass, ActorHandle, handle_from_info
from actorium.core.objects import object_ref
from actorium.core.objects.object_ref import ObjectRef, ObjectRefGenerator
from actorium.core.owner import reconnect
from actorium.core.remote_function import RemoteFunction
from actorium.core.wire import auth, protocol, transport
from actorium.core.worker import core_worker, output
from actorium.exceptions import AuthenticationError

_RAY_KWARGS_IGNORED = {"include_dashboard", "dashboard_host", "dashboard_port",
                       "logging_level", "configure_logging", "log_to_driver",
                       "_system_config", "runtime_env", "local_mode", "_temp_dir",
                       "object_spilling_directory", "_memory"}


class _Session:
    def __init__(self):
        self.worker = None
        self.proc = None  # embedded node process, if we started one
        self.info: dict = {}
        self.embedded = False
        self.lock = threading.RLock()


_session = _Session()
logger = logging.getLogger("actorium")
# Called (newest first) at shutdown, before the cluster goes: upper floors that started
# processes for this driver (the dashboard) stop them here.
_shutdown_hooks: list = []


def on_shutdown(fn) -> None:
    """Run ``fn()`` at the next ``shutdown()`` (once)."""
    _shutdown_hooks.append(fn)


def is_initialized() -> bool:
    return _session.worker is not None


def init(address: str | None = None, *, num_cpus: float | None = None,
         num_gpus: float | None = None, resources: dict | None = None,
         namespace: str | None = None, ignore_reinit_error: bool = False,
         object_store_memory: int | None = None, token: str | None = None, **kwargs):
    """Start an embedded local cluster (``address=None``) or connect to a running one
    (``"auto"`` or ``"host:port"``). Returns a small dict describing the connection.

    ``token``: the cluster token. When connecting it defaults to ``$ACTORIUM_TOKEN``,
    then the file ``$ACTORIUM_TOKEN_FILE``, then ``~/.actorium/token``; a wrong one
    raises ``AuthenticationError``. An embedded cluster uses ``token`` if given, else a
    fresh random one that never leaves this process and its node."""
    unknown = set(kwargs) - _RAY_KWARGS_IGNORED
    if unknown:
        raise TypeError(f"init() got unexpected keyword argument(s) {sorted(unknown)}")
    if not isinstance(kwargs.get("_system_config") or {}, dict):
        raise TypeError("The type of keyword '_system_config' must be dict, but received "
                        f"type {type(kwargs['_system_config'])}")
    if kwargs.get("_system_config") and (address or os.environ.get("ACTORIUM_ADDRESS")):
        # Ray's rule: a cluster's configuration was fixed when it started.
        raise ValueError("When connecting to an existing cluster, _system_config must not "
                         f"be provided (got keys {sorted(kwargs['_system_config'])}); it "
                         "belongs to the cluster's start.")
    with _session.lock:
        if _session.worker is not None:
            if ignore_reinit_error:
                return dict(_session.info)
            raise RuntimeError("Maybe you called actorium.init twice by accident? This error "
                               "can be suppressed by passing ignore_reinit_error=True or by "
                               "calling actorium.shutdown() first.")
        if address is None:
            address = os.environ.get("ACTORIUM_ADDRESS") or None
        if address is None:
            cluster_token = auth.Token(
                auth.check_token(token, "the token= argument"), "the token= argument") \
                if token is not None else auth.Token(auth.generate_token(), "this driver")
            auth.set_process_token(cluster_token)
            info = _start_embedded(num_cpus, num_gpus, resources, object_store_memory,
                                   cluster_token)
        else:
            if num_cpus is not None or num_gpus is not None or resources:
                raise ValueError("When connecting to an existing cluster, num_cpus, num_gpus "
                                 "and resources must not be given; they belong to the nodes.")
            try:
                info = _connect(address, token)
            except BaseException:
                auth.set_process_token(None)
                raise
        job = uuid.uuid4().hex[:8]
        try:
            worker = core_worker.CoreWorker(
                kind="driver", session_dir=info["session_dir"], job=job,
                node_id=info["node_id"], raylet_addr=info["raylet_addr"],
                gcs_addr=info["gcs_addr"], store_root=info["store_root"],
                namespace=namespace if namespace is not None else uuid.uuid4().hex[:12],
                store_capacity=info.get("store_capacity", 0), spill_dir=info.get("spill_dir"),
                host=info.get("driver_host", ""))
        except BaseException:
            _stop_embedded()
            raise
        worker.log_sink = _print_log
        core_worker.set_global_worker(worker)
        _session.worker = worker
        _register_driver(worker)
        _session.info = {"address": info.get("gcs_tcp") or info.get("gcs_addr", ""),
                         "node_id": info["node_id"],
                         "session_dir": info["session_dir"], "job_id": job,
                         "namespace": worker.namespace}
        return dict(_session.info)


def _start_embedded(num_cpus, num_gpus, resources, object_store_memory, token) -> dict:
    session_dir = launcher.new_session_dir()
    cpus = num_cpus if num_cpus is not None else (os.cpu_count() or 1)
    proc, info = launcher.start_node(
        session_dir, head=True, num_cpus=cpus, num_gpus=num_gpus or 0, resources=resources,
        driver_pid=os.getpid(), object_store_memory=object_store_memory or 0, token=token)
    _session.proc = proc
    _session.embedded = True
    return info


def _connect(address: str, token: str | None) -> dict:
    if address == "auto":
        current = launcher.read_current()
        if current is None:
            raise ConnectionError("address='auto' but no running actorium cluster was found "
                                  f"({launcher.CURRENT} is missing); start one with "
                                  "'actorium start --head'.")
        gcs = current["gcs_tcp"]
    else:
        gcs = address if address.startswith("tcp://") else f"tcp://{address}"
    try:
        known = auth.known_cluster_token(gcs) if token is None else None
        auth.set_process_token(known or auth.find_token(token=token)[0])
    except AuthenticationError:
        if not transport.tcp_reachable(gcs, timeout=5):  # no cluster: say that first
            raise ConnectionError(f"Could not connect to an actorium cluster at {address!r}: "
                                  f"nothing accepts connections there.") from None
        raise
    try:
        transport.handshake(gcs, timeout=5)  # AuthenticationError on a wrong token
        transport.rpc(gcs, protocol.Hello(transport.next_req_id(), protocol.PROTOCOL_VERSION,
                                          "driver"), timeout=5, what="the gcs")
        nodes = transport.rpc(gcs, protocol.ListState(transport.next_req_id(), "nodes"), timeout=5)
    except (TimeoutError, ConnectionError) as exc:
        raise ConnectionError(f"Could not connect to an actorium cluster at {address!r}: "
                              f"{exc}") from None
    except transport.RpcError as exc:
        raise ConnectionError(f"The actorium cluster at {address!r} refused this driver: "
                              f"{exc}") from None
    info = reconnect.attach_local_node(nodes)
    if info is None:
        raise ConnectionError(f"The cluster at {address!r} has no live node on this machine "
                              f"(a driver attaches to a node whose object store it can map).")
    info["gcs_addr"] = gcs
    if info.get("host"):
        # A multi-node cluster: our own endpoint must be reachable from the other nodes.
        info["driver_host"] = transport.local_ip_towards(gcs[6:].rsplit(":", 1)[0])
    return info


def _register_driver(worker) -> None:
    """Register on the I/O thread's raylet socket: that is where worker output is pushed."""
    worker.request_sync("raylet", protocol.RegisterClient(
        transport.next_req_id(), worker.worker_id, os.getpid(), "driver", "",
        worker.owner_addr, worker.job), timeout=10)


def _print_log(msg) -> None:
    lines = output.unhandled_lines(msg)
    if not lines:
        return
    stream = sys.stderr if msg.stream == "stderr" else sys.stdout
    prefix = f"({msg.name} pid={msg.pid}) "
    try:
        stream.write("".join(prefix + line + "\n" for line in lines))
        stream.flush()
    except Exception:
        pass


def shutdown() -> None:
    """Disconnect; stop the embedded cluster if this process started one. Idempotent."""
    with _session.lock:
        worker = _session.worker
        if worker is None:
            return
        while _shutdown_hooks:
            try:
                _shutdown_hooks.pop()()
            except Exception:
                pass
        try:
            worker.rpc_gcs(protocol.JobFinished(transport.next_req_id(), worker.job), timeout=2)
        except Exception:
            pass
        worker.shutdown()
        core_worker.set_global_worker(None)
        _session.worker = None
        transport.close_thread_sockets()
        _stop_embedded()
        auth.set_process_token(None)


def _stop_embedded() -> None:
    proc, info = _session.proc, _session.info
    if proc is None:
        return
    _session.proc = None
    launcher.stop_node(proc)
    session_dir = info.get("session_dir") if info else None
    if session_dir:
        import glob
        roots = glob.glob(f"/dev/shm/actorium/{os.path.basename(session_dir)}/*")
        launcher.remove_session(session_dir, roots)
        try:
            os.rmdir(f"/dev/shm/actorium/{os.path.basename(session_dir)}")
        except OSError:
            pass


atexit.register(shutdown)


def _worker():
    w = _session.worker or core_worker.global_worker()
    if w is None:
        _auto_init()
        w = _session.worker
    return w


def _auto_init() -> None:
    """The API was used before init(): start an embedded cluster with the defaults (or
    connect to $ACTORIUM_ADDRESS), as Ray does, and say so once."""
    with _session.lock:
        if _session.worker is not None or core_worker.global_worker() is not None:
            return
        init()
        where = "started a local cluster" if _session.proc is not None else \
            f"connected to {_session.info.get('address')}"
        message = (f"actorium was used before actorium.init(): {where} "
                   f"(session {_session.info.get('session_dir')}).")
    if logger.isEnabledFor(logging.INFO):
        logger.info(message)
    else:  # logging left at its default (WARNING): still show the one line, as Ray does
        sys.stderr.write(f"INFO actorium: {message}\n")


object_ref.set_auto_init(_auto_init)


# -- remote -----------------------------------------------------------------------
def remote(*args, **kwargs):
    """Decorator: ``@actorium.remote`` or ``@actorium.remote(num_cpus=2, ...)``."""
    if len(args) == 1 and not kwargs and callable(args[0]):
        return _make_remote(args[0], {})
    if args:
        raise TypeError("The @actorium.remote decorator must be applied either with no "
                        "arguments and no parentheses, or with keyword options only, e.g. "
                        "@actorium.remote(num_cpus=1).")
    return lambda target: _make_remote(target, kwargs)


def _make_remote(target, kwargs):
    if isinstance(target, type):
        return ActorClass(target, opts.build(opts.ActorOptions, None, **kwargs))
    if callable(target):
        return RemoteFunction(target, opts.build(opts.TaskOptions, None, **kwargs))
    raise TypeError(f"@actorium.remote can only decorate functions and classes, "
                    f"not {type(target).__name__}")


# -- objects ----------------------------------------------------------------------
def put(value, **_ignored) -> ObjectRef:
    return _worker().put(value)


def get(object_refs, *, timeout: float | None = None):
    """Values of one ref or a list of refs; raises the task's error if it failed."""
    worker = _worker()
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float))
                                or timeout < 0):
        raise ValueError(f"timeout must be a non-negative number or None, got {timeout!r}")
    if isinstance(object_refs, ObjectRef):
        return worker.get([object_refs], timeout)[0]
    if isinstance(object_refs, ObjectRefGenerator):
        raise TypeError("get() on a streaming generator is not allowed: iterate it and get "
                        "each ObjectRef it yields.")
    if isinstance(object_refs, (list, tuple)):
        bad = [r for r in object_refs if not isinstance(r, ObjectRef)]
        if bad:
            raise TypeError(f"get() expects ObjectRefs, but the list contains "
                            f"{type(bad[0]).__name__}: {bad[0]!r}")
        return worker.get(list(object_refs), timeout)
    raise TypeError(f"get() expects an ObjectRef or a list of ObjectRefs, got "
                    f"{type(object_refs).__name__}: {object_refs!r}")


def wait(object_refs, *, num_returns: int = 1, timeout: float | None = None,
         fetch_local: bool = True):
    if isinstance(object_refs, ObjectRef) or not isinstance(object_refs, (list, tuple)):
        raise TypeError("wait() expects a list of ObjectRefs")
    if not object_refs:
        return [], []  # Ray's answer for nothing to wait on
    for r in object_refs:
        if not isinstance(r, ObjectRef):
            raise TypeError(f"wait() expects ObjectRefs, got {type(r).__name__}")
    if len({r.id for r in object_refs}) != len(object_refs):
        raise ValueError("wait() expects a list of unique ObjectRefs")
    if not isinstance(num_returns, int) or num_returns < 0 or num_returns > len(object_refs):
        raise ValueError(f"num_returns must be between 0 and the number of refs "
                         f"({len(object_refs)}), got {num_returns!r}")
    if timeout is not None and timeout < 0:
        raise ValueError("timeout must be >= 0 or None")
    return _worker().wait(list(object_refs), num_returns, timeout, bool(fetch_local))


def cancel(object_ref, *, force: bool = False, recursive: bool = True) -> None:
    if isinstance(object_ref, ObjectRefGenerator):
        object_ref = object_ref.completed()
    if not isinstance(object_ref, ObjectRef):
        raise TypeError(f"cancel() expects an ObjectRef, got {type(object_ref).__name__}")
    worker = _worker()
    task_id = object_ref.task_id()
    if force and _submitted_kind(worker, task_id) == "actor":
        raise ValueError("force=True is not supported for actor tasks (Ray's rule: an "
                         "actor's state would be lost); use actorium.kill(actor)")

    def do_cancel():
        spec = worker.tasks.live.get(task_id)
        if spec is None:
            return  # finished (or not ours to cancel): a no-op, as in Ray
        if spec.kind == "actor":
            worker.actors.cancel(spec)
        else:
            worker.submitter.cancel(task_id, force, recursive)
    worker.post(do_cancel)


def _submitted_kind(worker, task_id: bytes):
    """"task", "actor" or None (finished or not ours), asked on the I/O thread, where
    every earlier ``.remote()`` of this thread has been submitted."""
    kind: concurrent.futures.Future = concurrent.futures.Future()
    worker.post(lambda: kind.set_result(getattr(worker.tasks.live.get(task_id), "kind",
                                                None)))
    return kind.result(timeout=30)


# -- actors -----------------------------------------------------------------------
def get_actor(name: str, namespace: str | None = None) -> ActorHandle:
    if not isinstance(name, str) or not name:
        raise ValueError("get_actor() needs a non-empty actor name")
    worker = _worker()
    ns = namespace if namespace is not None else worker.namespace
    info = worker.rpc_gcs(protocol.GetNamedActor(transport.next_req_id(), name, ns))
    if info is None or info["state"] == "DEAD":
        raise ValueError(f"Failed to look up actor with name {name!r} in namespace {ns!r}. "
                         f"It was never created, is dead, or lives in another namespace.")
    return handle_from_info(info)


def kill(actor: ActorHandle, *, no_restart: bool = True) -> None:
    if not isinstance(actor, ActorHandle):
        raise TypeError(f"kill() expects an actor handle, got {type(actor).__name__}")
    worker = _worker()
    # Sent on the socket the gcs publishes actor updates to: the DEAD update precedes the
    # reply there, so a call made after kill() returns already sees the actor dead.
    worker.request_sync("gcs", protocol.KillActor(
        transport.next_req_id(), actor._actor_id, no_restart))


# -- cluster views ----------------------------------------------------------------
def nodes() -> list[dict]:
    worker = _worker()
    out = []
    for n in worker.rpc_gcs(protocol.ListState(transport.next_req_id(), "nodes")):
        out.append({"NodeID": n["node_id"], "Alive": n["alive"], "alive": n["alive"],
                    "NodeManagerAddress": n.get("host") or "127.0.0.1",
                    "RayletSocketName": n["raylet_addr"],
                    "ObjectStoreSocketName": n["store_root"],
                    "Resources": n["resources"] if n["alive"] else {},
                    "IsHead": bool(n.get("head")), "DeathReason": n.get("reason", "")})
    return out


def _node_stats(worker) -> list[dict]:
    stats = []
    for n in worker.rpc_gcs(protocol.ListState(transport.next_req_id(), "nodes")):
        if not n["alive"]:
            continue
        try:
            stats.append(transport.rpc(n["raylet_addr"], protocol.NodeStats(
                transport.next_req_id()), timeout=5, what="a raylet"))
        except TimeoutError:
            stats.append({"total": n["resources"], "available": n["available"]})
    return stats


def cluster_resources() -> dict:
    total: dict = {}
    for n in _node_stats(_worker()):
        for k, v in n["total"].items():
            total[k] = total.get(k, 0.0) + v
    return total


def available_resources() -> dict:
    avail: dict = {}
    for n in _node_stats(_worker()):
        for k, v in n["available"].items():
            if v > 0:
                avail[k] = avail.get(k, 0.0) + v
    return avail


class RuntimeContext:
    """What the current process is doing, as Ray's RuntimeContext."""

    def __init__(self, worker):
        self._w = worker

    def get_job_id(self) -> str:
        return self._w.job

    def get_node_id(self) -> str:
        return self._w.node_id

    def get_worker_id(self) -> str:
        return self._w.worker_id.hex()

    def get_task_id(self) -> str | None:
        return self._w.current_task_id.hex() or None

    def get_actor_id(self) -> str | None:
        return self._w.current_actor_id.hex() or None

    def is_canceled(self) -> bool:
        """Whether ``cancel`` was called on the running task or actor call: a sync
        actor's call is not interrupted (its state matters), so it may poll this and
        stop early, as with Ray."""
        executor = getattr(self._w, "executor", None)
        if executor is None or executor.loop is not None:
            raise RuntimeError("is_canceled() is only available inside a task or a call "
                               "of a sync actor (not from a driver or an async actor)")
        return bool(executor.running) and executor.running in executor.cancelled

    @property
    def namespace(self) -> str:
        return self._w.namespace

    def get_namespace(self) -> str:
        return self._w.namespace

    @property
    def was_current_actor_reconstructed(self) -> bool:
        return self._w.restarts > 0

    def get_assigned_resources(self) -> dict:
        return {}

    # Ray's older properties: ids as Ray's ID objects (``.hex()``) and as str at once
    @property
    def node_id(self) -> "_ID":
        return _ID(self.get_node_id())

    @property
    def job_id(self) -> "_ID":
        return _ID(self.get_job_id())

    @property
    def task_id(self) -> "_ID | None":
        task = self.get_task_id()
        return None if task is None else _ID(task)

    @property
    def actor_id(self) -> "_ID | None":
        actor = self.get_actor_id()
        return None if actor is None else _ID(actor)

    def get(self) -> dict:
        """Ray's dict form of the context."""
        out = {"job_id": self.job_id, "node_id": self.node_id, "namespace": self.namespace}
        if self.task_id is not None:
            out["task_id"] = self.task_id
        if self.actor_id is not None:
            out["actor_id"] = self.actor_id
        return out


class _ID(str):
    """An id as a hex str that also answers Ray's ``ID.hex()`` and ``ID.binary()``."""

    def hex(self) -> str:
        return str(self)

    def binary(self) -> bytes:
        return bytes.fromhex(self)


def get_runtime_context() -> RuntimeContext:
    return RuntimeContext(_worker())
