"""Node process entry point: ``python -m actorium.raylet.node --session-dir ... [--head]``.

Start order matters: imports first (so every fork is warm), then fork the zygote and,
on the head, the gcs — both before this process touches ZeroMQ or LMDB, which must
never cross a fork — then run the raylet loop. One line ``READY {json}`` on stdout
tells the launcher the node's addresses.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import sys

# Pre-import what workers need, so the zygote's children start warm.
import cloudpickle  # noqa: F401
import msgpack  # noqa: F401
import zmq  # noqa: F401

import actorium.core.worker.worker_main  # noqa: F401
from actorium.core.ids import new_node_id
from actorium.isolation._sys import die_with_parent
from actorium.raylet import zygote
from actorium.raylet.raylet import Raylet


def parse(argv):
    p = argparse.ArgumentParser(prog="actorium-node")
    p.add_argument("--session-dir", required=True)
    p.add_argument("--head", action="store_true")
    p.add_argument("--gcs-address", default="")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--num-cpus", type=float, required=True)
    p.add_argument("--num-gpus", type=float, default=0)
    p.add_argument("--resources", default="{}")
    p.add_argument("--object-store-memory", type=int, default=0)
    p.add_argument("--driver-pid", type=int, default=0)
    p.add_argument("--node-id", default="")
    p.add_argument("--token-fd", type=int, default=-1,
                   help="read the cluster token from this inherited pipe")
    p.add_argument("--tcp", action="store_true",
                   help="listen on TCP (on --host) for everything other nodes must reach")
    p.add_argument("--node-timeout", type=float, default=0.0,
                   help="head only: seconds of silence before a node is declared dead")
    return p.parse_args(argv)


def main(argv=None) -> None:
    args = parse(argv if argv is not None else sys.argv[1:])
    _load_token(args)
    node_id = args.node_id or new_node_id()
    session = args.session_dir
    for sub in ("sockets", "logs"):
        os.makedirs(os.path.join(session, sub), exist_ok=True)
    log_dir = os.path.join(session, "logs")
    parent_sock, child_sock = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    zygote_pid = os.fork()
    if zygote_pid == 0:
        parent_sock.close()
        _redirect(os.path.join(log_dir, f"zygote-{node_id}.log"))
        zygote.serve(child_sock, log_dir)
    child_sock.close()
    # The sandbox zygote (fork + exec of a clean interpreter: it holds nothing of ours).
    from actorium.isolation import channel as sandbox_channel
    sandbox_log = os.path.join(log_dir, f"sandbox-zygote-{node_id}.log")
    sandbox_pid, sandbox_sock = sandbox_channel.start(sandbox_log)

    gcs_addr = args.gcs_address
    gcs_tcp = args.gcs_address
    gcs_pid = 0
    if args.head:
        gcs_addr = f"ipc://{session}/sockets/gcs"
        port = args.port or _free_port(args.host)
        gcs_tcp = f"tcp://{args.host}:{port}"
        gcs_pid = os.fork()
        if gcs_pid == 0:
            parent_sock.close()
            sandbox_sock.close()
            die_with_parent()
            _redirect(os.path.join(log_dir, "gcs.log"))
            from actorium.gcs import membership, server
            try:
                server.main(session, gcs_addr, gcs_tcp,
                            args.node_timeout or membership.DEFAULT_TIMEOUT)
            finally:
                os._exit(0)

    cluster = os.path.basename(session.rstrip("/"))
    store_root = f"/dev/shm/actorium/{cluster}/{node_id}"
    capacity = args.object_store_memory or default_store_capacity()
    spill_dir = os.path.join(session, "spill", node_id)
    from actorium.objectstore import ObjectStore
    store = ObjectStore(store_root, capacity, spill_dir=spill_dir, create=True)
    os.chmod(store_root, 0o700)  # the index and payloads are for the cluster's user only
    total = {"CPU": float(args.num_cpus), "memory": float(_memory_bytes()),
             "object_store_memory": float(capacity)}
    if args.num_gpus:
        total["GPU"] = float(args.num_gpus)
    total.update({k: float(v) for k, v in json.loads(args.resources).items()})
    from actorium.raylet.sandbox_relay import SandboxRelay
    relay = SandboxRelay(sandbox_sock, sandbox_pid, sandbox_log, None)
    raylet = Raylet(node_id=node_id, session_dir=session, gcs_addr=gcs_addr, total=total,
                    store=store, zygote_sock=parent_sock, prestart=max(1, int(args.num_cpus)),
                    driver_pid=args.driver_pid, sandbox=relay,
                    host=args.host if args.tcp else "", head=args.head)
    relay.reply = raylet._reply
    raylet.worker_config.update({"store_capacity": capacity, "spill_dir": spill_dir})
    signal.signal(signal.SIGTERM, lambda *_: setattr(raylet, "stopping", True))
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    standby = None
    if args.tcp and not args.head:
        # This node can keep the copy of the gcs's durable store (durable_replica.py).
        from actorium.gcs.durable_replica import Standby
        standby = Standby(os.path.join(session, "standby", node_id), args.host,
                          gcs_addr, node_id)
    code = 0
    try:
        raylet.start()
        if standby is not None:
            standby.start()
        info = {"node_id": node_id, "raylet_addr": raylet.addr, "gcs_addr": gcs_addr,
                "gcs_tcp": gcs_tcp, "store_root": store_root, "session_dir": session,
                "store_capacity": capacity, "spill_dir": spill_dir, "pid": os.getpid(),
                "host": args.host if args.tcp else "", "data_addr": raylet.data_addr}
        with open(os.path.join(session, f"node-{node_id}.json"), "w") as f:
            json.dump(info, f)
        print("READY " + json.dumps(info), flush=True)
        # The launcher stops reading our stdout now; later writes must not hit a closed pipe.
        _redirect_stdout(os.path.join(log_dir, f"node-{node_id}.out"))
        raylet.run()
    except BaseException as exc:
        print(f"node {node_id}: fatal: {exc!r}", file=sys.stderr, flush=True)
        code = 1
    finally:
        if standby is not None:
            standby.stop()
        raylet.shutdown()
        if gcs_pid:
            _stop(gcs_pid)
        _stop(zygote_pid)
        relay.stop()
        store.close()
        ObjectStore.destroy(store_root, spill_dir)
        _remove_empty_parents(store_root)
        os._exit(code)


def _load_token(args) -> None:
    """Hold the cluster token in memory before anything forks (workers inherit it that
    way; the sandbox zygote execs and keeps nothing), and keep it out of the
    environment that workers and their subprocesses see."""
    from actorium.core.wire import auth
    if args.token_fd >= 0:
        auth.adopt_token_fd(args.token_fd)
    elif args.head or args.gcs_address.startswith("tcp://"):
        auth.process_token()  # fail now, with the lookup's message, not in a child later
    if args.token_fd >= 0 or args.head or args.gcs_address.startswith("tcp://"):
        auth.curve_keys()  # derived once here, inherited by every forked worker
    os.environ.pop(auth.TOKEN_ENV, None)


def _redirect(path: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)


def _redirect_stdout(path: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.close(fd)


def _stop(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass


def _remove_empty_parents(path: str) -> None:
    parent = os.path.dirname(path)
    for _ in range(2):
        try:
            os.rmdir(parent)
        except OSError:
            return
        parent = os.path.dirname(parent)


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _memory_bytes() -> int:
    import psutil
    return int(psutil.virtual_memory().total * 0.7)


def default_store_capacity() -> int:
    """30% of RAM, bounded by what /dev/shm can hold, as Ray sizes its object store."""
    import psutil
    ram = int(psutil.virtual_memory().total * 0.3)
    try:
        st = os.statvfs("/dev/shm")
        ram = min(ram, int(st.f_bavail * st.f_frsize * 0.8))
    except OSError:
        pass
    return max(ram, 64 << 20)


if __name__ == "__main__":
    main()
