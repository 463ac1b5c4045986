"""``actorium logs``: the stdout/stderr of workers and actors, from any node.

The gcs says where an actor ran (its node and worker, hence ``worker-<id>.log``), the
node's raylet reads the file (``ReadLog``; ``raylet/logs.py``), so a dead actor's log
is readable as long as its node lives. ``--task`` asks every node for the output after
that task's marker line.
"""
from __future__ import annotations

import sys
import time

from actorium.cli.common import CliError, list_state, resolve_gcs, rpc
from actorium.core.wire import protocol, transport

FOLLOW_PERIOD = 0.5
READ = 1 << 20


def _hex(v) -> str:
    return v.hex() if isinstance(v, (bytes, bytearray)) else str(v or "")


def _read(node: dict, file: str, offset: int, length: int = READ, task: str = ""):
    try:
        return rpc(node["raylet_addr"], protocol.ReadLog(transport.next_req_id(), file, offset,
                                                         length, task), what="a raylet")
    except TimeoutError:
        raise CliError(f"node {node['node_id']} did not answer within the timeout") from None
    except transport.RpcError as exc:
        raise CliError(f"node {node['node_id']} refused: {exc}") from None


def _find_actor(gcs: str, wanted: str) -> dict:
    actors = list_state(gcs, "actors")
    found = [a for a in actors if a.get("name") == wanted or
             (len(wanted) >= 6 and _hex(a.get("actor_id")).startswith(wanted.lower()))]
    if not found:
        raise CliError(f"no actor named or with id {wanted!r}")
    # Several with one name (namespaces, or dead ones replaced): the live one, else the last.
    found.sort(key=lambda a: a.get("state") != "DEAD")
    return found[-1]


def _write(data: bytes) -> None:
    sys.stdout.buffer.write(data)
    sys.stdout.flush()


def cmd_logs(args) -> int:
    gcs, _ = resolve_gcs(args)
    nodes = {n["node_id"]: n for n in list_state(gcs, "nodes")}
    live = [n for n in nodes.values() if n.get("alive")]
    if args.node:
        match = [n for n in live if n["node_id"].startswith(args.node)]
        if not match:
            raise CliError(f"no live node {args.node!r}")
        live = match[:1]
    if args.task:
        for node in live:
            got = _read(node, "", 0, READ, args.task)
            if got.get("size", -1) >= 0:
                _write(_tail(got["data"], args.tail))
                return 0
        raise CliError(f"no output of task {args.task!r} in the logs of "
                       f"{len(live)} live node(s) (a task that printed nothing has none)")
    if args.actor:
        actor = _find_actor(gcs, args.actor)
        wid = _hex(actor.get("worker_id"))
        node = nodes.get(actor.get("node_id", ""))
        if not wid or node is None:
            raise CliError(f"actor {args.actor!r} ({actor.get('state')}) never started a "
                           f"process, so it has no log")
        if not node.get("alive"):
            raise CliError(f"actor {args.actor!r} ran on node {node['node_id']}, which is "
                           f"dead: its log went with it")
        return _show(node, f"worker-{wid}.log", args)
    if args.file:
        if len(live) != 1:
            raise CliError("--file needs --node ID on a cluster of several nodes")
        return _show(live[0], args.file, args)
    for node in live:  # no selection: what there is to read
        print(f"node {node['node_id']}:")
        for name, size, _mtime in _read(node, "*", 0):
            print(f"  {name}  ({size} bytes)")
    return 0


def _tail(data: bytes, n: int) -> bytes:
    if n <= 0:
        return data
    return b"".join(data.splitlines(keepends=True)[-n:])


def _show(node: dict, file: str, args) -> int:
    got = _read(node, file, -max(1, args.tail))
    if got.get("size", -1) < 0:
        raise CliError(f"node {node['node_id']} has no log {file}")
    _write(got["data"])
    offset = got["offset"]
    deadline = time.monotonic() + args.follow_for if args.follow_for else None
    while args.follow and (deadline is None or time.monotonic() < deadline):
        time.sleep(FOLLOW_PERIOD)
        got = _read(node, file, offset)
        if got["data"]:
            _write(got["data"])
        offset = got["offset"]
    return 0
