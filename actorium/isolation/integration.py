"""``isolation="sandbox"`` on remote functions and actor classes.

A sandboxed function is an ordinary task whose body, in the worker that runs it, asks the
node's raylet to run the user's function in a fresh jail (``RunSandbox`` with a pickled
call); a sandboxed actor is an ordinary actor whose instance (``SandboxedActorHost``)
keeps one resident jail for its life and forwards every method call into it. So both
are scheduled, accounted (the worker holds the lease's CPUs while its jail computes),
retried, restarted, named and killed exactly like other work, on any node, and can be
started from inside tasks and actors.

Invariants
----------
* The function or class and its arguments are pickled by the trusted caller and
  unpickled only inside the jail. What comes back is codec data (``codec.decode``, with
  limits) and plain strings: nothing a sandbox produced is ever unpickled.
* A limit hit raises ``SandboxViolation`` naming it. An exception raised by the user's
  code arrives as a ``TaskError`` whose cause is the builtin exception of the same type
  when there is one (so ``except ValueError`` works), else a ``SandboxedCodeError``;
  classes are never looked up by a name the sandbox chose, except among builtins.
* Output the user's code prints in the jail is printed by the worker, so it reaches the
  driver like any worker's output.
"""
from __future__ import annotations

import builtins
import functools
import os
import sys
import threading

import cloudpickle

from actorium.core import runtimes
from actorium.exceptions import ActorDiedError, SandboxViolation, TaskCancelledError
from actorium.isolation import codec
from actorium.isolation.policy import SandboxPolicy

__all__ = ["submit_sandboxed_function", "create_sandboxed_actor", "SandboxedCodeError"]

_WAIT_SLICE = 0.05   # seconds: how often a waiting worker thread can take a cancellation
_CANCEL_GRACE = 5.0  # seconds a cancelled call waits for its jail to be torn down
_by_value_lock = threading.Lock()


class SandboxedCodeError(Exception):
    """A non-builtin exception raised by sandboxed code (its class stays in the jail)."""


# ---------------------------------------------------------------- the caller's side

def _policy(options) -> SandboxPolicy:
    p = options.sandbox
    if p is None:
        return SandboxPolicy()
    if not isinstance(p, SandboxPolicy):
        raise TypeError(f"sandbox= must be an actorium.SandboxPolicy, got {type(p).__name__}")
    return p


def _jail_can_import(module) -> bool:
    """True when the module's file lies under the runtime paths every jail binds."""
    from actorium.isolation.rootfs import bind_sources
    path = getattr(module, "__file__", None)
    if not path:
        return True  # builtin module
    path = os.path.realpath(path)
    return any(path.startswith(src.rstrip("/") + "/") for src in bind_sources(SandboxPolicy()))


def pickle_for_jail(obj) -> bytes:
    """cloudpickle ``obj`` so the jail can load it: the module defining it is pickled by
    value unless the jail can import it (the jail sees only the Python runtime and its
    site-packages, not the user's source tree)."""
    module = sys.modules.get(getattr(obj, "__module__", "") or "")
    if module is None or module.__name__ == "__main__" or _jail_can_import(module):
        return cloudpickle.dumps(obj)
    with _by_value_lock:
        cloudpickle.register_pickle_by_value(module)
        try:
            return cloudpickle.dumps(obj)
        finally:
            cloudpickle.unregister_pickle_by_value(module)


def submit_sandboxed_function(remote_function, args, kwargs):
    """``RemoteFunction.remote`` for ``isolation="sandbox"``: submit the hosting task."""
    inner = remote_function.__dict__.get("_sandbox_task")
    if inner is None or inner[0] is not remote_function._options:
        inner = (remote_function._options, _hosting_function(remote_function))
        remote_function.__dict__["_sandbox_task"] = inner
    return inner[1].remote(*args, **kwargs)


def _hosting_function(remote_function):
    from actorium.core import options as opts
    from actorium.core.remote_function import RemoteFunction
    o = remote_function._options
    if remote_function._num_returns in ("streaming", "dynamic"):
        raise TypeError(f"{remote_function._name}: sandboxed functions cannot stream "
                        f"(num_returns={remote_function._num_returns!r}); return a list instead")
    policy = _policy(o)
    body = functools.partial(run_sandboxed_function, pickle_for_jail(remote_function._function),
                             _policy_dict(policy), remote_function._name)
    hosted = RemoteFunction(body, opts.build(opts.TaskOptions, o, isolation=None, sandbox=None,
                                             name=o.name or remote_function._name))
    hosted._signature = None  # the user's signature was checked by the caller already
    hosted._plain_arity = -1
    return hosted


def create_sandboxed_actor(actor_class, args, kwargs):
    """``ActorClass.remote`` for ``isolation="sandbox"``: create the hosting actor."""
    from actorium.core import options as opts
    from actorium.core.actor import ActorClass
    o = actor_class._options
    for name, m in actor_class._methods.items():
        if m["num_returns"] in ("streaming", "dynamic"):
            raise TypeError(f"{actor_class._name}.{name}: sandboxed actors cannot have "
                            f"generator (streaming) methods")
    host = ActorClass(SandboxedActorHost, opts.build(opts.ActorOptions, o, isolation=None,
                                                     sandbox=None))
    host._methods = {name: dict(m, is_async=False) for name, m in actor_class._methods.items()}
    host._is_async = False
    host._name = actor_class._name
    cls_bytes = pickle_for_jail(actor_class._cls)
    return host.remote(cls_bytes, _policy_dict(_policy(o)), *args, **kwargs)


def _policy_dict(policy: SandboxPolicy) -> dict:
    from actorium.isolation.channel import policy_to_dict
    return policy_to_dict(policy)


# ---------------------------------------------------------------- the worker's side

def _request(msg, cancellable_req_id: int | None = None):
    """Send ``msg`` to this worker's raylet; wait for the Reply, taking cancellations."""
    from actorium.core import api
    from actorium.core.wire import protocol
    cw = api._worker()
    done = threading.Event()
    box = []

    def on_reply(reply):
        box.append(reply)
        done.set()
    cw.post(cw.request, "raylet", msg, on_reply)
    try:
        while not done.wait(_WAIT_SLICE):  # short waits: an async cancel can land between
            pass
    except (TaskCancelledError, KeyboardInterrupt):  # the task was cancelled
        if cancellable_req_id is not None:
            # the reply ("cancelled") comes once the jail is gone: wait for it, so a
            # cancelled call leaves nothing running when the caller hears of it
            cw.post(cw._send_raylet, protocol.CancelSandbox(cancellable_req_id))
            done.wait(_CANCEL_GRACE)
        raise
    reply = box[0]
    if not reply.ok:
        if reply.value == "cancelled":
            raise TaskCancelledError("the sandboxed call was cancelled")
        from actorium.isolation.runner import SandboxError
        raise SandboxError(f"sandbox failed: {reply.value}")
    return reply.value


def _echo(result: dict) -> None:
    """Print what the jail printed, so it reaches the driver like worker output."""
    for stream, key in ((sys.stdout, "stdout"), (sys.stderr, "stderr")):
        text = result.get(key)
        if isinstance(text, str) and text:
            stream.write(text if text.endswith("\n") else text + "\n")
            stream.flush()


def _outcome(result, name: str, policy: dict):
    """Turn a sandbox result map into the call's return value or exception."""
    from actorium.isolation.runner import SandboxError
    if not isinstance(result, dict):
        raise SandboxError(f"malformed sandbox result of type {type(result).__name__}")
    _echo(result)
    violation = result.get("violation")
    if violation:
        raise SandboxViolation(_violation_message(name, violation, result, policy))
    error = result.get("error")
    if error:
        raise _user_exception(error)
    raw = result.get("value")
    if raw is None:
        code = result.get("exit_code")
        raise SandboxedCodeError(f"{name}: the sandboxed code exited (code {code}) "
                                 f"without returning a result")
    if not isinstance(raw, bytes):
        raise SandboxError("malformed sandbox result value")
    return codec.decode(raw, max_bytes=int(policy.get("max_output_bytes", 1 << 20)) + 1024)


_LIMIT_FIELDS = {"memory": "memory", "cpu_time": "cpu_seconds", "wall_time": "wall_seconds",
                 "output": "max_output_bytes", "processes": "max_processes"}


def _violation_message(name: str, violation: str, result: dict, policy: dict) -> str:
    limit = _LIMIT_FIELDS.get(violation)
    what = f" (limit {limit}={policy.get(limit)!r})" if limit else ""
    if violation == "seccomp":
        what = " (a denied system call)"
    tail = (result.get("stderr") or "").strip().splitlines()[-3:]
    return (f"{name}: the sandbox was stopped: {violation} limit hit{what}"
            + ("\n" + "\n".join(tail) if tail else ""))


def _user_exception(error: dict) -> BaseException:
    """The exception to raise for an error the sandboxed code raised (data, not pickle)."""
    message = str(error.get("message", ""))
    tb = str(error.get("traceback", ""))
    cls = None
    if error.get("module") == "builtins":
        cand = getattr(builtins, str(error.get("type")), None)
        if isinstance(cand, type) and issubclass(cand, Exception):
            cls = cand
    if error.get("type") == "CodecError":
        cls = codec.CodecError
    try:
        exc = cls(message) if cls is not None else None
    except Exception:
        exc = None
    if exc is None:
        exc = SandboxedCodeError(f"{error.get('module')}.{error.get('type')}: {message}")
    exc.__notes__ = [f"raised inside the sandbox:\n{tb}"] if tb else []
    return exc


def run_sandboxed_function(fn_bytes: bytes, policy: dict, name: str, /, *args, **kwargs):
    """The body of a sandboxed function's task (runs in a worker)."""
    from actorium.core import api
    from actorium.core.wire import protocol, transport
    cw = api._worker()
    payload = cloudpickle.dumps((fn_bytes, args, kwargs))
    req_id = transport.next_req_id()
    result = _request(protocol.RunSandbox(req_id, "", policy, b"", payload, cw.worker_id),
                      cancellable_req_id=req_id)
    return _outcome(result, name, policy)


class SandboxedActorHost:
    """The instance of a sandboxed actor, in its worker: one resident jail, calls forwarded.

    After a limit ended the jail, the violating call raises ``SandboxViolation`` and the
    actor is killed (restarted with a fresh jail when ``max_restarts`` allows)."""

    def __init__(self, cls_bytes: bytes, policy: dict, /, *args, **kwargs):
        from actorium.core import api
        from actorium.core.wire import protocol, transport
        self._policy = policy
        self._name = "sandboxed actor"
        self._dead: str | None = None
        cw = api._worker()
        payload = cloudpickle.dumps((cls_bytes, args, kwargs))
        opened = _request(protocol.SandboxOpen(transport.next_req_id(), payload, policy,
                                               cw.worker_id))
        if not opened.get("ok"):
            if opened.get("violation"):
                raise SandboxViolation(_violation_message("__init__", opened["violation"],
                                                          {}, policy))
            raise _user_exception(opened.get("error") or {"message": "constructor failed"})
        self._sid = opened["sid"]

    def __getattr__(self, method: str):
        if method.startswith("__"):
            raise AttributeError(method)
        return functools.partial(self._call, method)

    def _call(self, method: str, *args, **kwargs):
        from actorium.core.wire import protocol, transport
        if self._dead is not None:
            raise ActorDiedError(f"the sandboxed actor's jail ended ({self._dead})")
        payload = cloudpickle.dumps((method, args, kwargs))
        try:
            result = _request(protocol.SandboxCall(transport.next_req_id(), self._sid, payload))
        except Exception as exc:
            self._dead = str(exc)
            raise ActorDiedError(f"{method}: {exc}") from None
        if isinstance(result, dict) and result.get("violation"):
            self._dead = result["violation"]
            _kill_self_soon()
        return _outcome(result, method, self._policy)


def _kill_self_soon() -> None:
    """Ask the gcs to kill this actor once the current reply is on its way, so it dies
    (or restarts with a fresh jail) like an actor whose process crashed."""
    from actorium.core import api
    from actorium.core.wire import protocol, transport
    cw = api._worker()
    actor_id = cw.current_actor_id

    def kill():
        try:
            cw.rpc_gcs(protocol.KillActor(transport.next_req_id(), actor_id, False), timeout=10)
        except Exception:
            pass
    threading.Timer(0.2, kill).start()


class SandboxIsolation:
    """``isolation="sandbox"`` as an isolation of the core (``core/runtimes.py``)."""

    def submit_function(self, function, args: tuple, kwargs: dict):
        return submit_sandboxed_function(function, args, kwargs)

    def create_actor(self, actor_class, args: tuple, kwargs: dict):
        return create_sandboxed_actor(actor_class, args, kwargs)


runtimes.register_isolation("sandbox", SandboxIsolation())
