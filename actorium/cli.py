"""The ``actorium`` command: start, inspect and stop a long-running local cluster.

    actorium start --head [--port N] [--host H] [--num-cpus N] [--num-gpus N]
                          [--resources JSON] [--object-store-memory BYTES] [--token-file F]
    actorium start --head --restart       (a crashed head, on its address, with its tables)
    actorium start --address HEAD_HOST:PORT [--host H] [--num-cpus N] [--resources JSON]
                          [--token-file F]
    actorium status [--address host:port] [--token-file F]
    actorium list nodes|actors [--address host:port] [--token-file F]
    actorium stop [--token-file F]

``start --head`` launches a head node (gcs + raylet + workers) detached from this
process and records it in ``current_cluster`` (under ``$ACTORIUM_TMPDIR``, default
``/tmp/actorium-sessions``), which is what ``actorium.init(address="auto")`` reads.
It uses the cluster token found by the usual lookup (``--token-file``,
``$ACTORIUM_TOKEN``, ``$ACTORIUM_TOKEN_FILE``, ``~/.actorium/token``), creating the
token file (mode 0600) with a fresh random token when it does not exist yet.
Expected failures print one ``actorium: ...`` line on stderr and exit with code 1.
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import time

from actorium.core import auth, launcher, protocol, transport
from actorium.exceptions import AuthenticationError

DEFAULT_PORT = 6379  # as `ray start --head`
PING_TIMEOUT = 2.0
QUERY_TIMEOUT = 5.0


class CliError(Exception):
    """An expected failure: printed as one line, exit code 1."""


# -- helpers -----------------------------------------------------------------------
def _rpc(addr: str, msg, timeout: float = QUERY_TIMEOUT, what: str = ""):
    return transport.rpc(addr, msg, timeout=timeout, what=what)


def _use_token(args) -> None:
    """Look up the cluster token for this command (CliError when there is none)."""
    try:
        auth.set_process_token(auth.find_token(token_file=args.token_file)[0])
    except AuthenticationError as exc:
        raise CliError(str(exc)) from None


def _use_token_for(args, gcs: str) -> None:
    """``_use_token`` for talking to ``gcs``; when there is no token and nothing listens
    there either, the error says the latter, which is the first thing to fix."""
    try:
        _use_token(args)
    except CliError:
        if not transport.tcp_reachable(gcs, PING_TIMEOUT):
            raise CliError(f"no actorium head answered at {_plain(gcs)} within "
                           f"{PING_TIMEOUT:g}s") from None
        raise


def _ping(gcs: str, timeout: float = PING_TIMEOUT) -> bool:
    """Whether the gcs at ``gcs`` answers. Raises CliError when it refuses our token or
    speaks another protocol version (something is there, but we may not use it)."""
    try:
        transport.handshake(gcs, timeout=timeout)
        _rpc(gcs, protocol.Hello(transport.next_req_id(), protocol.PROTOCOL_VERSION, "cli"),
             timeout=timeout, what="the gcs")
        return True
    except AuthenticationError as exc:
        raise CliError(str(exc)) from None
    except transport.RpcError as exc:
        raise CliError(f"the gcs at {_plain(gcs)} refused this command: {exc}") from None
    except (TimeoutError, ConnectionError, protocol.ProtocolError):
        return False


def _tcp(address: str) -> str:
    address = address.strip()
    if address.startswith("tcp://"):
        address = address[6:]
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise CliError(f"invalid address {address!r}: expected host:port, e.g. 127.0.0.1:6379")
    return f"tcp://{host}:{port}"


def _plain(gcs_tcp: str) -> str:
    return gcs_tcp[6:] if gcs_tcp.startswith("tcp://") else gcs_tcp


def _cluster_alive(current: dict) -> bool:
    if launcher.pid_alive(current.get("pid", 0), current.get("session_dir", "")):
        return True
    gcs = current.get("gcs_tcp")
    try:
        return bool(gcs) and _ping(gcs, timeout=1.0)
    except CliError:
        return True  # something answers there, even if not to our token


def _resolve_gcs(args) -> tuple[str, dict | None]:
    """The gcs tcp address to talk to, and the current_cluster record if that is where
    it came from, with the cluster token set up. Raises CliError when there is nothing
    to talk to or no token for it."""
    address = args.address
    if address:
        gcs = _tcp(address)
        _use_token_for(args, gcs)
        if not _ping(gcs):
            raise CliError(f"no actorium cluster answered at {_plain(gcs)} within "
                           f"{PING_TIMEOUT:g}s")
        return gcs, None
    current = launcher.read_current()
    if current is None:
        raise CliError("no running actorium cluster found (no record at "
                       f"{launcher.CURRENT}); start one with 'actorium start --head'")
    gcs = current.get("gcs_tcp", "")
    pid = current.get("pid", 0)
    if not launcher.pid_alive(pid, current.get("session_dir", "")):
        raise CliError(f"the actorium cluster recorded in {launcher.CURRENT} is not running "
                       f"(node pid {pid} is gone); run 'actorium stop' to clean up")
    _use_token(args)
    if not gcs or not _ping(gcs):
        raise CliError(f"the actorium cluster at {_plain(gcs)} did not answer within "
                       f"{PING_TIMEOUT:g}s")
    return gcs, current


def _list(gcs: str, what: str) -> list:
    try:
        return _rpc(gcs, protocol.ListState(transport.next_req_id(), what), what="the gcs")
    except TimeoutError:
        raise CliError(f"the gcs at {_plain(gcs)} did not answer a {what} listing within "
                       f"{QUERY_TIMEOUT:g}s") from None
    except transport.RpcError as exc:
        raise CliError(f"the gcs refused to list {what}: {exc}") from None


def _node_stats(node: dict) -> dict | None:
    """NodeStats from a node's raylet (ipc on this machine, or TCP), None if silent."""
    addr = node.get("raylet_addr", "")
    if not node.get("alive") or addr.startswith("ipc://") and not os.path.exists(addr[6:]):
        return None
    try:
        return _rpc(addr, protocol.NodeStats(transport.next_req_id()), timeout=3,
                    what="a raylet")
    except (TimeoutError, transport.RpcError):
        return None


def _fmt_bytes(n: float) -> str:
    n = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1024
    return f"{n:.2f} TiB"


def _fmt_amount(key: str, v: float) -> str:
    if key in ("memory", "object_store_memory"):
        return _fmt_bytes(v)
    return f"{v:g}"


def _fmt_used(key: str, total: float, available: float) -> str:
    used = max(0.0, total - available)
    if key in ("memory", "object_store_memory"):
        return f"{_fmt_bytes(used)}/{_fmt_bytes(total)}"
    return f"{used:g}/{total:g}"


def _resource_order(keys) -> list:
    first = [k for k in ("CPU", "GPU") if k in keys]
    last = [k for k in ("memory", "object_store_memory") if k in keys]
    return first + sorted(k for k in keys if k not in first and k not in last) + last


def _actor_class(info: dict) -> str:
    try:
        import msgpack
        return msgpack.unpackb(info.get("meta") or b"").get("class_name", "?")
    except Exception:
        return "?"


def _hex(v) -> str:
    return v.hex() if isinstance(v, (bytes, bytearray)) else str(v)


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(header, widths)).rstrip()]
    for r in rows:
        lines.append("  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip())
    return "\n".join(lines)


# -- start -------------------------------------------------------------------------
def _parse_resources(text: str | None) -> dict:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise CliError(f"--resources must be a JSON object such as '{{\"TPU\": 2}}': {exc}") \
            from None
    if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, (int, float)) and not isinstance(v, bool)
            and v >= 0 for k, v in value.items()):
        raise CliError("--resources must be a JSON object mapping names to non-negative "
                       "numbers, e.g. '{\"TPU\": 2}'")
    reserved = {"CPU", "GPU"} & set(value)
    if reserved:
        raise CliError(f"use --num-cpus/--num-gpus instead of {sorted(reserved)} in --resources")
    return value


def _port_free(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def cmd_start(args) -> int:
    if args.head == bool(args.address):
        raise CliError("give either --head (start a new cluster) or --address HOST:PORT "
                       "(join this machine to a running head)")
    if args.num_cpus is not None and args.num_cpus < 0:
        raise CliError("--num-cpus must be >= 0")
    if args.num_gpus is not None and args.num_gpus < 0:
        raise CliError("--num-gpus must be >= 0")
    if args.object_store_memory is not None and args.object_store_memory < (1 << 20):
        raise CliError("--object-store-memory must be at least 1 MiB (given in bytes)")
    if not 0 <= args.port <= 65535:
        raise CliError(f"--port must be between 0 and 65535, got {args.port}")
    resources = _parse_resources(args.resources)
    if args.address:
        return _start_joining(args, resources)
    try:
        token, created = auth.find_token(token_file=args.token_file, create=True)
    except (AuthenticationError, OSError) as exc:
        raise CliError(f"cannot set up the cluster token: {exc}") from None
    auth.set_process_token(token)

    current = launcher.read_current()
    reuse = ""  # --restart: the dead head's session (its gcs tables) and address
    if current is not None:
        if _cluster_alive(current):
            raise CliError(f"an actorium cluster is already running at "
                           f"{_plain(current.get('gcs_tcp', '?'))} (node pid "
                           f"{current.get('pid')}); stop it with 'actorium stop' first")
        if args.restart and os.path.isdir(os.path.join(current.get("session_dir", ""), "gcs")):
            reuse = current["session_dir"]
            args.host, args.port = current["gcs_tcp"][6:].rsplit(":", 1)
            args.port = int(args.port)
        else:
            # A stale record (the node died without 'actorium stop'): clean up after it.
            if current.get("session_dir"):
                launcher.cleanup_session(current["session_dir"])
            launcher.remove_current(current)
    if args.restart and not reuse:
        raise CliError("--restart needs a head that died without 'actorium stop' (its "
                       "record and tables); none was found")

    try:
        socket.getaddrinfo(args.host, None)
    except OSError:
        raise CliError(f"--host {args.host!r} is not a resolvable address") from None
    port = args.port
    if port and not _port_free(args.host, port):
        raise CliError(f"port {port} on {args.host} is already in use; choose another with "
                       f"--port N (or --port 0 for any free port)")

    session_dir = reuse or launcher.new_session_dir()
    num_cpus = args.num_cpus if args.num_cpus is not None else (os.cpu_count() or 1)
    try:
        proc, info = launcher.start_node(
            session_dir, head=True, num_cpus=num_cpus, num_gpus=args.num_gpus or 0,
            resources=resources, port=port, host=args.host, driver_pid=0,
            object_store_memory=args.object_store_memory or 0, tcp=True, token=token)
    except RuntimeError as exc:
        if not reuse:  # never lose a restarted head's tables
            launcher.cleanup_session(session_dir)
        tail = [ln for ln in str(exc).splitlines()[1:] if ln.strip()]
        cause = f" (last log line: {tail[-1].strip()})" if tail else ""
        raise CliError(f"the head node failed to start; see the logs in "
                       f"{session_dir}/logs{cause}") from None
    # The node runs in its own session with stdin/stderr detached from us; forget it so
    # nothing here waits for or signals it when this process exits.
    proc.returncode = 0
    address = _plain(info["gcs_tcp"])
    record = {"address": address, "gcs_tcp": info["gcs_tcp"], "gcs_addr": info["gcs_addr"],
              "session_dir": info["session_dir"], "pid": info["pid"],
              "node_id": info["node_id"], "raylet_addr": info["raylet_addr"],
              "store_root": info["store_root"], "started": time.time(),
              "num_cpus": num_cpus, "num_gpus": args.num_gpus or 0, "resources": resources}
    launcher.write_current(record)
    print(f"Started actorium head node at {address}  (node {info['node_id'][:12]}, "
          f"pid {info['pid']}, session {os.path.basename(session_dir)})")
    print(f"  logs: {session_dir}/logs")
    _print_token_help(token, created)
    print("To connect from Python on this machine:")
    print("    import actorium")
    print("    actorium.init(address=\"auto\")")
    print(f"    # or: actorium.init(address=\"{address}\")")
    print("To see the cluster:  actorium status")
    print("To stop it:          actorium stop")
    return 0


def _print_token_help(token: auth.Token, created: bool) -> None:
    if token.source.startswith("the token file "):
        path = token.source[len("the token file "):]
        state = "created, mode 0600" if created else "existing"
        print(f"  cluster token file: {path}  ({state})")
        print(f"  Every TCP port requires this token. Elsewhere use: --token-file {path}, "
              f"ACTORIUM_TOKEN_FILE={path}, or a copy at ~/.actorium/token")
    else:
        print(f"  cluster token: taken from {token.source} (not written to any file)")


def _start_joining(args, resources: dict) -> int:
    """A node of this machine joins the head at ``--address``."""
    gcs = _tcp(args.address)
    _use_token_for(args, gcs)
    if not _ping(gcs):
        raise CliError(f"no actorium head answered at {_plain(gcs)} within {PING_TIMEOUT:g}s")
    host = args.host if args.host_given else transport.local_ip_towards(
        _plain(gcs).rsplit(":", 1)[0])
    num_cpus = args.num_cpus if args.num_cpus is not None else (os.cpu_count() or 1)
    try:
        info = launcher.join_node(gcs, host, num_cpus=num_cpus, num_gpus=args.num_gpus or 0,
                                  resources=resources,
                                  object_store_memory=args.object_store_memory or 0,
                                  token=auth.process_token())
    except RuntimeError as exc:
        tail = [ln for ln in str(exc).splitlines()[1:] if ln.strip()]
        raise CliError(f"the node failed to join {_plain(gcs)}"
                       + (f": {tail[-1].strip()}" if tail else "")) from None
    print(f"Started actorium node {info['node_id']} (pid {info['pid']}) on {host}, joined "
          f"to the head at {_plain(gcs)}")
    print("To stop it: actorium stop")
    return 0


# -- status / list -----------------------------------------------------------------
def cmd_status(args) -> int:
    gcs, current = _resolve_gcs(args)
    nodes = _list(gcs, "nodes")
    actors = _list(gcs, "actors")
    alive = [n for n in nodes if n.get("alive")]
    session = os.path.basename(current["session_dir"]) if current else ""
    print(f"actorium cluster at {_plain(gcs)}" + (f"  (session {session})" if session else ""))
    print(f"Nodes: {len(alive)} alive, {len(nodes) - len(alive)} dead")

    totals: dict = {}
    avails: dict = {}
    store_used = store_cap = store_objects = store_spilled = 0
    have_store = False
    for n in nodes:
        stats = _node_stats(n) if n.get("alive") else None
        total = (stats or {}).get("total") or n.get("resources") or {}
        avail = (stats or {}).get("available") or n.get("available") or {}
        state = "alive" if n.get("alive") else "dead"
        parts = [f"{k} {_fmt_used(k, total[k], avail.get(k, 0.0) if n.get('alive') else total[k])}"
                 for k in _resource_order(total)]
        print(f"  node {n['node_id']}  {state}  pid {n.get('pid', '?')}")
        if n.get("alive"):
            print(f"    resources (used/total): {', '.join(parts)}")
            for k, v in total.items():
                totals[k] = totals.get(k, 0.0) + v
                avails[k] = avails.get(k, 0.0) + avail.get(k, 0.0)
        store = (stats or {}).get("store") or {}
        if store:
            have_store = True
            store_used += store.get("used", 0)
            store_cap += store.get("capacity", 0)
            store_objects += store.get("num_objects", 0)
            store_spilled += store.get("spilled", 0)
            workers = (stats or {}).get("workers") or {}
            if workers:
                print("    workers: " + ", ".join(f"{v} {k}" for k, v in sorted(workers.items())))

    print("Resources (used/total):")
    if totals:
        for k in _resource_order(totals):
            print(f"  {k}: {_fmt_used(k, totals[k], avails.get(k, 0.0))}")
    else:
        print("  (no live nodes)")
    if have_store:
        pct = 100.0 * store_used / store_cap if store_cap else 0.0
        print(f"Object store: {_fmt_bytes(store_used)} / {_fmt_bytes(store_cap)} used "
              f"({pct:.1f}%), {store_objects} objects, {_fmt_bytes(store_spilled)} spilled")
    else:
        print("Object store: (no node on this machine answered)")

    by_state: dict = {}
    for a in actors:
        by_state[a.get("state", "?")] = by_state.get(a.get("state", "?"), 0) + 1
    summary = ", ".join(f"{s}: {c}" for s, c in sorted(by_state.items()))
    print(f"Actors: {len(actors)}" + (f" ({summary})" if summary else ""))
    for a in sorted(actors, key=lambda a: (a.get("state") == "DEAD", a.get("name") or "")):
        name = a.get("name") or "(unnamed)"
        ns = f"  namespace {a['namespace']}" if a.get("name") and a.get("namespace") else ""
        detached = "  detached" if a.get("detached") else ""
        node = f"  node {a['node_id'][:12]}" if a.get("node_id") else ""
        print(f"  {a.get('state', '?'):<20} {name}  [{_actor_class(a)}]{ns}{detached}"
              f"  pid {a.get('pid') or '-'}{node}")
    return 0


def cmd_list(args) -> int:
    gcs, _ = _resolve_gcs(args)
    if args.what == "nodes":
        rows = []
        for n in _list(gcs, "nodes"):
            stats = _node_stats(n)
            total = (stats or {}).get("total") or n.get("resources") or {}
            avail = (stats or {}).get("available") or n.get("available") or {}
            res = ", ".join(f"{k} {_fmt_used(k, total[k], avail.get(k, 0.0))}"
                            for k in _resource_order(total) if k in ("CPU", "GPU")
                            or k not in ("memory", "object_store_memory"))
            store = (stats or {}).get("store") or {}
            st = (f"{_fmt_bytes(store.get('used', 0))}/{_fmt_bytes(store.get('capacity', 0))}"
                  if store else "-")
            rows.append([n["node_id"], "ALIVE" if n.get("alive") else "DEAD",
                         str(n.get("pid", "")), res or "-", st])
        print(_table(rows, ["NODE_ID", "STATE", "PID", "RESOURCES (used/total)",
                            "OBJECT STORE"]))
    else:
        rows = [[_hex(a.get("actor_id", ""))[:16], a.get("name") or "-",
                 a.get("namespace") or "-", _actor_class(a), a.get("state", "?"),
                 str(a.get("pid") or "-"), "yes" if a.get("detached") else "no"]
                for a in _list(gcs, "actors")]
        print(_table(rows, ["ACTOR_ID", "NAME", "NAMESPACE", "CLASS", "STATE", "PID",
                            "DETACHED"]))
    return 0


# -- stop --------------------------------------------------------------------------
def cmd_stop(args) -> int:
    joined = launcher.joined_nodes()
    for record in joined:
        launcher.stop_joined(record)
        print(f"Stopped actorium node {record['node_id']} (joined to "
              f"{_plain(record.get('gcs_tcp', '?'))}).")
    current = launcher.read_current()
    if current is None:
        if not joined:
            print(f"No running actorium cluster found (nothing recorded in "
                  f"{launcher.CURRENT}).")
        return 0
    session_dir = current.get("session_dir", "")
    head_pid = int(current.get("pid", 0) or 0)
    gcs = current.get("gcs_tcp", "")
    address = _plain(gcs) if gcs else "?"

    head_alive = launcher.pid_alive(head_pid, session_dir)
    # Every node the gcs knows about (one today; more if nodes joined), else the head.
    nodes = []
    if head_alive and gcs:
        # Without a usable token we still stop the head on this machine (over ipc).
        try:
            _use_token(args)
            transport.handshake(gcs, timeout=PING_TIMEOUT)
            nodes = [n for n in _rpc(gcs, protocol.ListState(transport.next_req_id(), "nodes"),
                                     timeout=PING_TIMEOUT, what="the gcs") if n.get("alive")]
        except (CliError, AuthenticationError, ConnectionError, TimeoutError,
                transport.RpcError, protocol.ProtocolError) as exc:
            print(f"actorium: could not list the cluster's nodes ({exc}); stopping the head "
                  f"node on this machine", file=sys.stderr)
            nodes = []
    if not any(n.get("pid") == head_pid for n in nodes) and head_alive:
        nodes.append({"node_id": current.get("node_id", ""), "pid": head_pid,
                      "raylet_addr": current.get("raylet_addr", "")})
    # Stop the other nodes first, the head (with the gcs) last.
    nodes.sort(key=lambda n: n.get("pid") == head_pid)
    for n in nodes:
        addr = n.get("raylet_addr", "")
        if addr.startswith("tcp://") or addr.startswith("ipc://") and os.path.exists(addr[6:]):
            try:
                _rpc(addr, protocol.ShutdownNode(transport.next_req_id()), timeout=2,
                     what="a raylet")
            except (TimeoutError, transport.RpcError, protocol.ProtocolError):
                pass
    forced = 0
    for n in nodes:
        pid = int(n.get("pid") or 0)
        if not launcher.wait_pid_gone(pid, 10.0, session_dir):
            forced += 1
        # Always sweep the group: workers the node could not reap go with it.
        launcher.kill_group(pid)
        launcher.wait_pid_gone(pid, 2.0, session_dir)
    if head_pid and not head_alive:
        launcher.kill_group(head_pid)
    if session_dir:
        launcher.cleanup_session(session_dir)
    launcher.remove_current(current)
    if not head_alive:
        print(f"The actorium cluster recorded at {address} was no longer running; "
              f"cleaned up its files.")
    else:
        how = f" ({forced} node(s) had to be killed)" if forced else ""
        print(f"Stopped the actorium cluster at {address}: {len(nodes)} node(s){how}.")
    return 0


# -- entry point -------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="actorium",
                                description="Start, inspect and stop a local actorium cluster.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    s = sub.add_parser("start", help="start a head node that keeps running after this "
                                     "command exits")
    s.add_argument("--head", action="store_true", help="start a head node (a new cluster)")
    s.add_argument("--address", default=None,
                   help="HOST:PORT of a running head: start a node that joins it")
    s.add_argument("--restart", action="store_true",
                   help="with --head: restart a head that died, on its address and with "
                        "its tables (live nodes and drivers reconnect)")
    s.add_argument("--port", type=int, default=DEFAULT_PORT,
                   help=f"gcs TCP port (default {DEFAULT_PORT}; 0 picks a free port)")
    s.add_argument("--host", default=None, help="address to listen on (default: "
                   "127.0.0.1 for a head, the interface towards the head for a node)")
    s.add_argument("--num-cpus", type=float, default=None, help="CPUs (default: all)")
    s.add_argument("--num-gpus", type=float, default=None, help="GPUs (default 0)")
    s.add_argument("--resources", default=None, help="custom resources as JSON, "
                                                     "e.g. '{\"TPU\": 2}'")
    s.add_argument("--object-store-memory", type=int, default=None,
                   help="object store capacity in bytes (default: 30%% of RAM)")
    _token_arg(s)
    s.set_defaults(func=cmd_start)

    st = sub.add_parser("status", help="nodes, resources, object store and actors")
    st.add_argument("--address", default=None, help="host:port of the gcs (default: the "
                                                    "cluster started by 'actorium start')")
    _token_arg(st)
    st.set_defaults(func=cmd_status)

    ls = sub.add_parser("list", help="list nodes or actors as a table")
    ls.add_argument("what", choices=["nodes", "actors"])
    ls.add_argument("--address", default=None)
    _token_arg(ls)
    ls.set_defaults(func=cmd_list)

    sp = sub.add_parser("stop", help="stop the cluster started by 'actorium start'")
    _token_arg(sp)
    sp.set_defaults(func=cmd_stop)
    return p


def _token_arg(parser) -> None:
    parser.add_argument("--token-file", default=None,
                        help="file holding the cluster token (default: $ACTORIUM_TOKEN, "
                             "then $ACTORIUM_TOKEN_FILE, then ~/.actorium/token)")


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    # Create the ZeroMQ context before the first rpc: creating it lazily inside
    # transport.thread_dealer clears that thread's socket cache mid-call.
    transport.context()
    if not getattr(args, "func", None):
        parser.print_help()
        return 1
    if getattr(args, "command", "") == "start":
        args.host_given = args.host is not None
        args.host = args.host or "127.0.0.1"
    try:
        return args.func(args) or 0
    except CliError as exc:
        print(f"actorium: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("actorium: interrupted", file=sys.stderr)
        return 130
    finally:
        try:
            transport.close_thread_sockets()
        except Exception:
            pass


if __name__ == "__main__":
    sys.exit(main())
