"""``actorium start`` and ``actorium stop``: a long-running head, joining nodes, stopping."""
from __future__ import annotations

import json
import os
import signal
import socket
import sys
import time

from actorium.cli.common import (PING_TIMEOUT, CliError, cluster_alive, ping, plain, rpc,
                                  tcp_address, use_token, use_token_for)
from actorium.core import launcher
from actorium.core.wire import auth, protocol, transport
from actorium.exceptions import AuthenticationError


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
    if args.http_port is not None and (not args.head or not 0 <= args.http_port <= 65535):
        raise CliError("--http-port needs --head and a port between 0 and 65535")
    resources = _parse_resources(args.resources)
    if args.autoscale is not None:
        _check_autoscale(args)
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
        if cluster_alive(current):
            raise CliError(f"an actorium cluster is already running at "
                           f"{plain(current.get('gcs_tcp', '?'))} (node pid "
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
    address = plain(info["gcs_tcp"])
    record = {"address": address, "gcs_tcp": info["gcs_tcp"], "gcs_addr": info["gcs_addr"],
              "session_dir": info["session_dir"], "pid": info["pid"],
              "node_id": info["node_id"], "raylet_addr": info["raylet_addr"],
              "store_root": info["store_root"], "started": time.time(),
              "num_cpus": num_cpus, "num_gpus": args.num_gpus or 0, "resources": resources}
    if args.autoscale is not None:
        record["autoscaler_pid"] = _start_autoscaler(args, info, token)
    launcher.write_current(record)
    print(f"Started actorium head node at {address}  (node {info['node_id'][:12]}, "
          f"pid {info['pid']}, session {os.path.basename(session_dir)})")
    print(f"  logs: {session_dir}/logs")
    _print_token_help(token, created)
    if args.http_port is not None:
        from actorium.cli.serve_cmds import start_http
        print(f"  HTTP ingress: {start_http(info['gcs_tcp'], args.http_host, args.http_port)}")
    print("To connect from Python on this machine:")
    print("    import actorium")
    print("    actorium.init(address=\"auto\")")
    print(f"    # or: actorium.init(address=\"{address}\")")
    print("To see the cluster:  actorium status")
    print("To stop it:          actorium stop")
    return 0


def _check_autoscale(args) -> None:
    from actorium.autoscaler.provider import PROVIDERS
    if not args.head:
        raise CliError("--autoscale runs on the head: use it with --head")
    if args.autoscale not in PROVIDERS:
        raise CliError(f"unknown --autoscale provider {args.autoscale!r}; known: "
                       f"{', '.join(sorted(PROVIDERS))}")
    if args.min_nodes < 0 or args.max_nodes < max(1, args.min_nodes):
        raise CliError(f"need 0 <= --min-nodes <= --max-nodes and --max-nodes >= 1, got "
                       f"--min-nodes {args.min_nodes} --max-nodes {args.max_nodes}")
    if args.node_cpus <= 0:
        raise CliError(f"--node-cpus must be > 0, got {args.node_cpus:g}")
    if args.idle_timeout < 0:
        raise CliError(f"--idle-timeout must be >= 0, got {args.idle_timeout:g}")


def _start_autoscaler(args, info: dict, token) -> int:
    from actorium.autoscaler import monitor
    proc = monitor.start(info["gcs_tcp"], info["session_dir"], provider=args.autoscale,
                         token=token, head_pid=info["pid"], min_nodes=args.min_nodes,
                         max_nodes=args.max_nodes, node_cpus=args.node_cpus,
                         idle_timeout=args.idle_timeout)
    proc.returncode = 0  # detached, like the head: nothing here waits for it
    print(f"  autoscaler: provider {args.autoscale}, {args.min_nodes}..{args.max_nodes} "
          f"node(s) of {args.node_cpus:g} CPU, idle timeout {args.idle_timeout:g}s "
          f"(pid {proc.pid})")
    return proc.pid


def _stop_autoscaler(current: dict) -> None:
    """Before the nodes: it would otherwise replace the nodes being stopped. It
    terminates the nodes it created itself on the way out."""
    pid = int(current.get("autoscaler_pid") or 0)
    if not pid or not launcher.pid_alive(pid, current.get("session_dir", ""),
                                         "actorium.autoscaler.monitor"):
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    if not launcher.wait_pid_gone(pid, 20.0, current.get("session_dir", ""),
                                  "actorium.autoscaler.monitor"):
        launcher.kill_group(pid)


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
    gcs = tcp_address(args.address)
    use_token_for(args, gcs)
    if not ping(gcs):
        raise CliError(f"no actorium head answered at {plain(gcs)} within {PING_TIMEOUT:g}s")
    host = args.host if args.host_given else transport.local_ip_towards(
        plain(gcs).rsplit(":", 1)[0])
    num_cpus = args.num_cpus if args.num_cpus is not None else (os.cpu_count() or 1)
    try:
        info = launcher.join_node(gcs, host, num_cpus=num_cpus, num_gpus=args.num_gpus or 0,
                                  resources=resources,
                                  object_store_memory=args.object_store_memory or 0,
                                  token=auth.process_token())
    except RuntimeError as exc:
        tail = [ln for ln in str(exc).splitlines()[1:] if ln.strip()]
        raise CliError(f"the node failed to join {plain(gcs)}"
                       + (f": {tail[-1].strip()}" if tail else "")) from None
    print(f"Started actorium node {info['node_id']} (pid {info['pid']}) on {host}, joined "
          f"to the head at {plain(gcs)}")
    print("To stop it: actorium stop")
    return 0


def cmd_stop(args) -> int:
    joined = launcher.joined_nodes()
    for record in joined:
        launcher.stop_joined(record)
        print(f"Stopped actorium node {record['node_id']} (joined to "
              f"{plain(record.get('gcs_tcp', '?'))}).")
    current = launcher.read_current()
    if current is None:
        if not joined:
            print(f"No running actorium cluster found (nothing recorded in "
                  f"{launcher.CURRENT}).")
        return 0
    session_dir = current.get("session_dir", "")
    _stop_autoscaler(current)
    head_pid = int(current.get("pid", 0) or 0)
    gcs = current.get("gcs_tcp", "")
    address = plain(gcs) if gcs else "?"

    head_alive = launcher.pid_alive(head_pid, session_dir)
    # Every node the gcs knows about (one today; more if nodes joined), else the head.
    nodes = []
    if head_alive and gcs:
        # Without a usable token we still stop the head on this machine (over ipc).
        try:
            use_token(args)
            transport.handshake(gcs, timeout=PING_TIMEOUT)
            nodes = [n for n in rpc(gcs, protocol.ListState(transport.next_req_id(), "nodes"),
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
                rpc(addr, protocol.ShutdownNode(transport.next_req_id()), timeout=2,
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
