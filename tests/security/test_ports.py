"""Every TCP port of a running cluster refuses whoever does not hold the cluster token,
logs the refusal, and keeps serving authenticated drivers.

The cluster is a real head started with ``actorium start --head``; the attacks come
from this process over real TCP sockets (raw sockets and ZeroMQ)."""
from __future__ import annotations

import glob
import json
import os
import socket
import struct
import time

import msgpack
import pytest

from security_helpers import closed_by_peer, logged_refusal
import zmq

import actorium
from actorium.core.wire import auth, guard, protocol
from actorium.exceptions import AuthenticationError

# The first 64 bytes a ZeroMQ 3.x peer sends: signature, version 3.0, mechanism, as-server.
_GREETING_CURVE = (b"\xff" + b"\0" * 8 + b"\x7f" + b"\x03\x00" + b"CURVE".ljust(20, b"\0")
                   + b"\0" + b"\0" * 31)


def _tcp_ports(head) -> list[int]:
    """The ZeroMQ (CURVE) ports; the raylet's object data port has its own handshake and
    tests (test_data_port.py)."""
    data_ports = set()
    for path in glob.glob(os.path.join(head.session_dir, "node-*.json")):
        with open(path) as f:
            addr = json.load(f).get("data_addr", "")
        if addr:
            data_ports.add(int(addr.rpartition(":")[2]))
    ports = sorted({port for _, port, _ in head.tcp_listeners()} - data_ports)
    assert ports, "the cluster has no listening TCP port"
    return ports


def _plain_dealer(ctx: zmq.Context, address: str) -> zmq.Socket:
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(f"tcp://{address}")
    return sock


def test_head_listens_on_loopback_only_by_default(head):
    listeners = head.tcp_listeners()
    assert listeners
    assert {ip for ip, _, _ in listeners} == {"127.0.0.1"}, listeners


def test_token_file_is_created_owner_only(head):
    assert os.stat(head.token_file).st_mode & 0o777 == 0o600
    assert os.stat(os.path.dirname(head.token_file)).st_mode & 0o777 == 0o700
    assert len(head.token) == 64
    assert f"cluster token file: {head.token_file}" in head.start_output.stdout


def test_session_directory_with_the_ipc_sockets_is_owner_only(head):
    assert os.stat(head.session_dir).st_mode & 0o777 == 0o700


def test_unauthenticated_zmq_client_gets_no_reply_and_is_logged(head):
    ctx = zmq.Context()
    try:
        sock = _plain_dealer(ctx, head.address)
        sock.send(protocol.encode(protocol.Hello(1, protocol.PROTOCOL_VERSION, "attacker")))
        sock.send(protocol.encode(protocol.ListState(2, "actors")))
        assert sock.poll(2000) == 0, "an unauthenticated client got an answer"
        # Either side may notice the mechanism mismatch first; both are refusals.
        line = head.wait_log("refused connection to", f"{head.address} from ")
        assert "from 127.0.0.1:" in line or "from an unknown peer" in line, line
        assert "does not speak CURVE" in line or "hung up during the handshake" in line, line
    finally:
        ctx.destroy(linger=0)
    assert head.serves_a_task()


def test_client_key_not_derived_from_the_token_is_refused_by_zap(head):
    """A client that learnt the server's public key but not the token gets through the
    CURVE crypto and is refused by the guard's ZAP check."""
    keys = auth.curve_keys(auth.Token(head.token, "test"))
    public, secret = zmq.curve_keypair()
    ctx = zmq.Context()
    try:
        sock = ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.curve_serverkey = keys.server_public
        sock.curve_publickey, sock.curve_secretkey = public, secret
        sock.connect(f"tcp://{head.address}")
        sock.send(protocol.encode(protocol.Hello(1, protocol.PROTOCOL_VERSION, "attacker")))
        assert sock.poll(2000) == 0, "a client without the token got an answer"
        line = head.wait_log("refused connection to", "unknown CURVE client key")
        assert "127.0.0.1" in line
    finally:
        ctx.destroy(linger=0)
    assert head.serves_a_task()


def test_wrong_token_raises_authentication_error_promptly(head):
    started = time.monotonic()
    with pytest.raises(AuthenticationError, match="cluster token .* is not the token"):
        actorium.init(address=head.address, token="not-the-cluster-token-at-all")
    assert time.monotonic() - started < 6.0
    assert not actorium.is_initialized()
    head.wait_log("refused connection to", head.address, "does not hold the cluster token")


def test_driver_with_the_token_from_the_argument_runs_tasks(head):
    actorium.init(address=head.address, token=head.token)
    try:
        @actorium.remote
        def double(x):
            return 2 * x
        assert actorium.get(double.remote(21), timeout=30) == 42
    finally:
        actorium.shutdown()


def test_cli_with_a_wrong_token_exits_1_with_a_clear_message(head, tmp_path):
    bad = tmp_path / "bad-token"
    bad.write_text("x" * 64)
    bad.chmod(0o600)
    out = head.cli("status", "--address", head.address, "--token-file", str(bad))
    assert out.returncode == 1
    assert "refused this process's credentials" in out.stderr
    assert "Traceback" not in out.stderr


def _refused_to(head, port: int, reason: str, attack) -> str:
    """Run ``attack()`` (which returns the local port it connected from) and return the
    refusal line it caused. On loopback libzmq may close such a connection before the
    guard reads the peer's address; the line then names an unknown peer."""
    needles = ("refused connection to", f":{port} from ", reason)
    line, local = logged_refusal(head, needles, attack)
    assert f"from 127.0.0.1:{local}:" in line or "from an unknown peer" in line, line
    return line


@pytest.mark.parametrize("size", [17, 4096])
def test_garbage_bytes_on_every_tcp_port_are_refused_and_logged(head, size):
    def attack(port):
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.recv(10)  # the server's greeting: the connection is accepted
            sock.sendall(os.urandom(size))
            assert closed_by_peer(sock), f"port {port} kept a garbage connection open"
            return sock.getsockname()[1]
    for port in _tcp_ports(head):
        _refused_to(head, port, "not a ZeroMQ CURVE peer", lambda: attack(port))
    assert all(p.is_running() for p in head.processes())
    assert head.serves_a_task()


def test_oversized_frame_on_every_tcp_port_is_refused_and_logged(head):
    """A well-formed greeting followed by a frame header announcing 1 TiB: libzmq drops
    the connection on the size alone (MAXMSGSIZE), allocating nothing."""
    def attack(port):
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(_GREETING_CURVE)
            sock.sendall(b"\x06" + struct.pack(">Q", 1 << 40))  # long command frame
            assert closed_by_peer(sock), f"port {port} accepted a 1 TiB frame header"
            return sock.getsockname()[1]
    for port in _tcp_ports(head):
        _refused_to(head, port, "not a ZeroMQ CURVE peer", lambda: attack(port))
    assert all(p.is_running() for p in head.processes())
    assert head.serves_a_task()


def test_hello_with_another_protocol_version_is_refused_with_a_clear_message(head):
    actorium.init(address=head.address, token=head.token)
    try:
        from actorium.core.wire import transport
        gcs = f"tcp://{head.address}"
        with pytest.raises(transport.RpcError, match="protocol version mismatch"):
            transport.rpc(gcs, protocol.Hello(transport.next_req_id(), 999, "driver"),
                          timeout=10)
        assert transport.rpc(gcs, protocol.Hello(transport.next_req_id(),
                                                 protocol.PROTOCOL_VERSION, "driver"),
                             timeout=10) == {"version": protocol.PROTOCOL_VERSION}
    finally:
        actorium.shutdown()
    head.wait_log("refused", "protocol version 999")


def test_node_registration_with_another_protocol_version_is_refused(head):
    actorium.init(address=head.address, token=head.token)
    try:
        from actorium.core.wire import transport
        msg = protocol.RegisterNode(transport.next_req_id(), "intruder", "tcp://127.0.0.1:1",
                                    {"CPU": 1.0}, "/nonexistent", os.getpid(), 999)
        with pytest.raises(transport.RpcError, match="protocol version mismatch"):
            transport.rpc(f"tcp://{head.address}", msg, timeout=10)
        nodes = transport.rpc(f"tcp://{head.address}",
                              protocol.ListState(transport.next_req_id(), "nodes"), timeout=10)
        assert "intruder" not in [n["node_id"] for n in nodes]
    finally:
        actorium.shutdown()


def test_driver_speaking_another_protocol_version_gets_a_clear_connection_error(head):
    out = head.driver(
        "import actorium\n"
        "from actorium.core.wire import protocol\n"
        "protocol.PROTOCOL_VERSION = 999\n"
        "try:\n"
        f"    actorium.init(address={head.address!r}, token={head.token!r})\n"
        "except ConnectionError as exc:\n"
        "    print('REFUSED', exc)\n")
    assert "REFUSED" in out.stdout, out.stdout + out.stderr
    assert "protocol version mismatch" in out.stdout


def test_undecodable_messages_from_an_authenticated_peer_are_dropped_and_logged(head):
    """Bad bytes from a peer holding the token are dropped and logged; the gcs goes on."""
    actorium.init(address=head.address, token=head.token)
    try:
        from actorium.core.wire import transport
        gcs = f"tcp://{head.address}"
        sock = transport.thread_dealer(gcs)
        for junk in (b"\xc1\xc1", msgpack.packb(["no_such_op", 1]), msgpack.packb(["ping"]),
                     msgpack.packb({"op": "ping"}), msgpack.packb(7), b""):
            sock.send(junk)
        assert transport.rpc(gcs, protocol.Ping(transport.next_req_id()), timeout=10).startswith("gcs")
    finally:
        actorium.shutdown()
    head.wait_log("gcs: dropped bad message")
    assert head.serves_a_task()


@pytest.fixture
def small_limit_head():
    """A head whose TCP sockets refuse messages above 1 MiB."""
    from conftest import Head
    h = Head(extra_env={"ACTORIUM_MAX_MESSAGE_BYTES": str(1 << 20)})
    try:
        yield h
    finally:
        h.stop()


def test_oversized_message_from_an_authenticated_peer_is_refused(small_limit_head):
    head = small_limit_head
    actorium.init(address=head.address, token=head.token)
    try:
        from actorium.core.wire import transport
        gcs = f"tcp://{head.address}"

        def kv_put(size):
            msg = protocol.KvPut(transport.next_req_id(), os.urandom(8), b"x" * size, True)
            return transport.rpc(gcs, msg, timeout=3)
        assert kv_put(512 << 10) is True
        with pytest.raises(TimeoutError):
            kv_put(2 << 20)  # libzmq drops the connection on the frame's size
        assert transport.rpc(gcs, protocol.Ping(transport.next_req_id()), timeout=10).startswith("gcs")
    finally:
        actorium.shutdown()
    assert head.serves_a_task()


def test_a_random_port_server_from_transport_is_authenticated_and_logs_refusals(capfd):
    """Any ROUTER that ``transport`` binds on TCP — here a ``tcp://host:*`` one, as a
    raylet talking to other nodes binds — requires the token, and its guard names the
    real port and the peer in its refusal lines."""
    from actorium.core.wire import transport
    auth.set_process_token(auth.Token("t" * 64, "test"))
    try:
        router = transport.bind_router("tcp://127.0.0.1:*")
        endpoint = router.getsockopt_string(zmq.LAST_ENDPOINT)
        port = int(endpoint.rsplit(":", 1)[1])
        ctx = zmq.Context()
        try:
            plain = ctx.socket(zmq.DEALER)
            plain.setsockopt(zmq.LINGER, 0)
            plain.connect(endpoint)
            plain.send(b"hello")
            good = transport.connect_dealer(endpoint)
            good.send(b"authenticated")
            assert router.poll(5000)
            assert router.recv_multipart()[1] == b"authenticated"
            assert router.poll(500) == 0, "the unauthenticated message got through"
            # refusal lines are rate-limited per process (earlier tests may have used up
            # this window's budget): one is due within the next window at the latest
            deadline = time.monotonic() + guard.LOG_WINDOW + 5
            err = ""
            while f"refused connection to {endpoint} from " not in err:
                assert time.monotonic() < deadline, err
                time.sleep(0.05)
                err += capfd.readouterr().err
            # the real port, and the peer (unknown if it was refused before it was read)
            assert (f":{port} from 127.0.0.1:" in err
                    or f":{port} from an unknown peer" in err), err
        finally:
            ctx.destroy(linger=0)
            good.close(0)
            router.close(0)
    finally:
        auth.set_process_token(None)
