"""What every ``actorium`` command needs: finding the cluster, its token, asking its gcs."""
from __future__ import annotations

import os

from actorium.core import launcher
from actorium.core.wire import auth, protocol, transport
from actorium.exceptions import AuthenticationError

DEFAULT_PORT = 6379  # as `ray start --head`
PING_TIMEOUT = 2.0
QUERY_TIMEOUT = 5.0


class CliError(Exception):
    """An expected failure: printed as one line, exit code 1."""


def rpc(addr: str, msg, timeout: float = QUERY_TIMEOUT, what: str = ""):
    return transport.rpc(addr, msg, timeout=timeout, what=what)


def use_token(args) -> None:
    """Look up the cluster token for this command (CliError when there is none)."""
    try:
        auth.set_process_token(auth.find_token(token_file=args.token_file)[0])
    except AuthenticationError as exc:
        raise CliError(str(exc)) from None


def use_token_for(args, gcs: str) -> None:
    """``use_token`` for talking to ``gcs``; when there is no token and nothing listens
    there either, the error says the latter, which is the first thing to fix."""
    try:
        use_token(args)
    except CliError:
        if not transport.tcp_reachable(gcs, PING_TIMEOUT):
            raise CliError(f"no actorium head answered at {plain(gcs)} within "
                           f"{PING_TIMEOUT:g}s") from None
        raise


def ping(gcs: str, timeout: float = PING_TIMEOUT) -> bool:
    """Whether the gcs at ``gcs`` answers. Raises CliError when it refuses our token or
    speaks another protocol version (something is there, but we may not use it)."""
    try:
        transport.handshake(gcs, timeout=timeout)
        rpc(gcs, protocol.Hello(transport.next_req_id(), protocol.PROTOCOL_VERSION, "cli"),
             timeout=timeout, what="the gcs")
        return True
    except AuthenticationError as exc:
        raise CliError(str(exc)) from None
    except transport.RpcError as exc:
        raise CliError(f"the gcs at {plain(gcs)} refused this command: {exc}") from None
    except (TimeoutError, ConnectionError, protocol.ProtocolError):
        return False


def tcp_address(address: str) -> str:
    address = address.strip()
    if address.startswith("tcp://"):
        address = address[6:]
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise CliError(f"invalid address {address!r}: expected host:port, e.g. 127.0.0.1:6379")
    return f"tcp://{host}:{port}"


def plain(gcs_tcp: str) -> str:
    return gcs_tcp[6:] if gcs_tcp.startswith("tcp://") else gcs_tcp


def cluster_alive(current: dict) -> bool:
    if launcher.pid_alive(current.get("pid", 0), current.get("session_dir", "")):
        return True
    gcs = current.get("gcs_tcp")
    try:
        return bool(gcs) and ping(gcs, timeout=1.0)
    except CliError:
        return True  # something answers there, even if not to our token


def resolve_gcs(args) -> tuple[str, dict | None]:
    """The gcs tcp address to talk to, and the current_cluster record if that is where
    it came from, with the cluster token set up. Raises CliError when there is nothing
    to talk to or no token for it."""
    address = args.address
    if address:
        gcs = tcp_address(address)
        use_token_for(args, gcs)
        if not ping(gcs):
            raise CliError(f"no actorium cluster answered at {plain(gcs)} within "
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
    use_token(args)
    if not gcs or not ping(gcs):
        raise CliError(f"the actorium cluster at {plain(gcs)} did not answer within "
                       f"{PING_TIMEOUT:g}s")
    return gcs, current


def list_state(gcs: str, what: str) -> list:
    try:
        return rpc(gcs, protocol.ListState(transport.next_req_id(), what), what="the gcs")
    except TimeoutError:
        raise CliError(f"the gcs at {plain(gcs)} did not answer a {what} listing within "
                       f"{QUERY_TIMEOUT:g}s") from None
    except transport.RpcError as exc:
        raise CliError(f"the gcs refused to list {what}: {exc}") from None


def node_stats(node: dict) -> dict | None:
    """NodeStats from a node's raylet (ipc on this machine, or TCP), None if silent."""
    addr = node.get("raylet_addr", "")
    if not node.get("alive") or addr.startswith("ipc://") and not os.path.exists(addr[6:]):
        return None
    try:
        return rpc(addr, protocol.NodeStats(transport.next_req_id()), timeout=3,
                    what="a raylet")
    except (TimeoutError, transport.RpcError):
        return None


def node_objects(node: dict, limit: int) -> list | None:
    """The objects in a live node's store (its raylet's answer), None if it is silent."""
    addr = node.get("raylet_addr", "")
    if not node.get("alive") or addr.startswith("ipc://") and not os.path.exists(addr[6:]):
        return None
    try:
        return rpc(addr, protocol.ListObjects(transport.next_req_id(), limit), timeout=3,
                   what="a raylet")
    except (TimeoutError, transport.RpcError):
        return None
