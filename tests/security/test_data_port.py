"""The raylet's object data port (plain TCP, HMAC-SHA256 handshake) refuses whoever does
not hold the cluster token, and bad requests from whoever does, logs each refusal, and
keeps serving. Attacks come from this process over real sockets against a head started
with ``actorium start --head``."""
from __future__ import annotations

import glob
import json
import os
import socket
import struct

import numpy as np
import pytest

from security_helpers import closed_by_peer, logged_refusal

import actorium
from actorium.core.wire import auth
from actorium.raylet import data_path as dp

REFUSED = "refused connection to tcp://"


def _data_addr(head) -> str:
    (path,) = glob.glob(os.path.join(head.session_dir, "node-*.json"))
    with open(path) as f:
        return json.load(f)["data_addr"]


def _connect(head) -> socket.socket:
    host, _, port = _data_addr(head).rpartition(":")
    return socket.create_connection((host, int(port)), timeout=10)


def _refusal(head, reason: str, attack) -> str:
    """Run ``attack(sock)`` on a fresh connection; return the refusal line it caused,
    which names the attacker's address."""
    needles = (REFUSED, "(object data) from 127.0.0.1:", reason)

    def once():
        with _connect(head) as sock:
            attack(sock)
            assert closed_by_peer(sock), "the data port kept the connection open"
            return sock.getsockname()[1]
    line, local = logged_refusal(head, needles, once)
    assert f"from 127.0.0.1:{local}:" in line, line
    return line


def _proof_with(key: bytes, sock: socket.socket) -> None:
    """Do the client side of the handshake with ``key``, skipping the server check."""
    nonce = os.urandom(dp.NONCE)
    sock.sendall(dp.HELLO.pack(dp.MAGIC, dp.VERSION, nonce))
    _version, server_nonce, _proof = dp.CHALLENGE.unpack(dp.recv_exact(sock, dp.CHALLENGE.size))
    sock.sendall(dp._proof(key, b"client", nonce, server_nonce))


def _wrong_key() -> bytes:
    return auth.data_path_key(auth.Token("not-the-cluster-token-" + "x" * 20, "test"))


def _still_serves(head) -> None:
    assert all(p.is_running() for p in head.processes())
    assert head.serves_a_task()
    conn = dp.Connection(_data_addr(head), auth.data_path_key(auth.Token(head.token, "t")))
    try:  # a good client still completes the handshake and gets an answer
        assert conn._read_one(b"\x01" * 16, 0, 8, -1, None) == (-1, -1)
    finally:
        conn.close()


def test_data_port_is_bound_on_the_node_host_and_advertised(head):
    addr = _data_addr(head)
    host, _, port = addr.rpartition(":")
    assert host == "127.0.0.1"
    assert ("127.0.0.1", int(port)) in {(ip, p) for ip, p, _ in head.tcp_listeners()}


def test_client_with_a_wrong_token_is_refused_and_logged(head):
    acked = []

    def attack(sock):
        _proof_with(_wrong_key(), sock)
        acked.append(sock.recv(1))
    _refusal(head, "does not hold the cluster token (bad HMAC proof)", attack)
    assert acked == [b""]  # no ACK: closed right after the bad proof
    _still_serves(head)


def test_client_that_cannot_prove_the_token_is_refused_and_logged(head):
    def attack(sock):
        sock.sendall(dp.HELLO.pack(dp.MAGIC, dp.VERSION, os.urandom(dp.NONCE)))
        dp.recv_exact(sock, dp.CHALLENGE.size)
        sock.sendall(os.urandom(dp.PROOF))
    _refusal(head, "bad HMAC proof", attack)


def test_a_server_without_the_token_is_refused_by_the_client(head):
    """The handshake is mutual: the client checks the server's proof first."""
    with pytest.raises(dp.HandshakeError, match="does not hold the cluster token"):
        dp.Connection(_data_addr(head), _wrong_key())


@pytest.mark.parametrize("size", [17, 4096])
def test_garbage_bytes_are_refused_and_logged(head, size):
    _refusal(head, "not an actorium object data peer",
             lambda sock: sock.sendall(b"\xff" + os.urandom(size - 1)))
    _still_serves(head)


def test_another_protocol_version_is_refused_with_a_clear_reason(head):
    _refusal(head, "object data protocol version 99 (this node speaks 1)",
             lambda sock: sock.sendall(dp.HELLO.pack(dp.MAGIC, 99, os.urandom(dp.NONCE))))


def test_silent_client_is_dropped_after_the_handshake_timeout(head):
    _refusal(head, f"no handshake within {dp.HANDSHAKE_TIMEOUT:g}s", lambda sock: None)


def _authenticated(head) -> dp.Connection:
    return dp.Connection(_data_addr(head), auth.data_path_key(auth.Token(head.token, "t")))


@pytest.mark.parametrize("frame, reason", [
    (struct.pack(f"!BB{dp.MAX_ID}sQQ", 1, 16, b"\x01" * 16, 0, dp.MAX_REQUEST + 1),
     f"request length {dp.MAX_REQUEST + 1} outside"),
    (struct.pack(f"!BB{dp.MAX_ID}sQQ", 1, 16, b"\x01" * 16, 0, 0), "request length 0"),
    (struct.pack(f"!BB{dp.MAX_ID}sQQ", 7, 16, b"\x01" * 16, 0, 10), "unknown request kind 7"),
    (struct.pack(f"!BB{dp.MAX_ID}sQQ", 1, 40, b"\x01" * 32, 0, 10), "malformed object id"),
    (struct.pack(f"!BB{dp.MAX_ID}sQQ", 1, 2, b"\x01" * 32, 0, 10), "malformed object id"),
    (struct.pack(f"!BB{dp.MAX_ID}sQQ", 1, 16, b"\x01" * 16, 1 << 60, 10), "offset"),
])
def test_invalid_request_from_an_authenticated_peer_is_refused_and_logged(head, frame, reason):
    needles = (REFUSED, "(object data) from 127.0.0.1:", reason)

    def once():
        conn = _authenticated(head)
        try:
            conn.sock.sendall(frame)
            assert closed_by_peer(conn.sock)
        finally:
            conn.close()
    logged_refusal(head, needles, once)
    _still_serves(head)


def test_authenticated_client_reads_exactly_the_stored_payload(head, tmp_path):
    actorium.init(address=head.address, token=head.token)
    try:
        ref = actorium.put(np.arange(3 * (1 << 20) + 5, dtype=np.uint8))
        (store_root,) = glob.glob(f"/dev/shm/actorium/{os.path.basename(head.session_dir)}/*")
        with open(os.path.join(store_root, "objects", ref.id.hex()), "rb") as f:
            stored = f.read()
        conn = _authenticated(head)
        try:
            fd = os.open(tmp_path / "incoming", os.O_RDWR | os.O_CREAT, 0o600)
            try:
                count, total = conn._read_one(ref.id, 100, len(stored) - 100, fd, None)
                assert (count, total) == (len(stored) - 100, len(stored))
                assert os.pread(fd, len(stored), 100) == stored[100:]
                with pytest.raises(ConnectionError):  # past the end: refused
                    conn._read_one(ref.id, len(stored) + 1, 10, fd, None)
            finally:
                os.close(fd)
        finally:
            conn.close()
    finally:
        actorium.shutdown()
