"""Escape suite, part 3: no network path out of a network=False sandbox."""
import os
import socket

import pytest

from isolation_helpers import ok

pytestmark = pytest.mark.jail

CONNECT = """
import socket
def attempt(family, kind, addr, payload=b'ping'):
    s = socket.socket(family, kind)
    s.settimeout(2)
    try:
        s.connect(addr)
        s.send(payload)
        return 'sent'
    except OSError as e:
        return type(e).__name__
    finally:
        s.close()
"""


def test_tcp_connect_to_host_listener_fails():
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(5)
    srv.settimeout(0.3)
    port = srv.getsockname()[1]
    try:
        r = ok(CONNECT + "attempt(socket.AF_INET, socket.SOCK_STREAM, ('127.0.0.1', port))",
               {"port": port})
        assert r.value == "ConnectionRefusedError"
        with pytest.raises(socket.timeout):
            srv.accept()
    finally:
        srv.close()


def test_udp_to_host_listener_is_not_delivered():
    srv = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    srv.bind(("127.0.0.1", 0))
    srv.settimeout(0.5)
    port = srv.getsockname()[1]
    try:
        ok(CONNECT + "attempt(socket.AF_INET, socket.SOCK_DGRAM, ('127.0.0.1', port), b'leak')",
           {"port": port})
        with pytest.raises(socket.timeout):
            srv.recv(100)
    finally:
        srv.close()


def test_host_abstract_unix_socket_is_unreachable():
    name = f"\0actorium-test-raylet-{os.getpid()}"
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(name)
    srv.listen(1)
    try:
        r = ok(CONNECT + "attempt(socket.AF_UNIX, socket.SOCK_STREAM, name)", {"name": name})
        assert r.value == "ConnectionRefusedError"
    finally:
        srv.close()


def test_host_unix_socket_path_is_unreachable(tmp_path):
    path = str(tmp_path / "gcs.sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(1)
    try:
        r = ok(CONNECT + "attempt(socket.AF_UNIX, socket.SOCK_STREAM, path)", {"path": path})
        assert r.value == "FileNotFoundError"
    finally:
        srv.close()


def test_dns_lookup_fails():
    r = ok("""
import socket
try:
    socket.getaddrinfo('example.com', 80); out = 'resolved'
except OSError as e:
    out = type(e).__name__
out
""")
    assert r.value == "gaierror"


def test_cloud_metadata_endpoint_is_unreachable():
    r = ok(CONNECT + "attempt(socket.AF_INET, socket.SOCK_STREAM, ('169.254.169.254', 80))")
    assert r.value == "OSError"  # ENETUNREACH: the namespace has no route at all


def test_only_loopback_exists_and_works():
    r = ok("""
import socket, threading
names = [n for _, n in socket.if_nameindex()]
srv = socket.socket(); srv.bind(('127.0.0.1', 0)); srv.listen(1)
c = socket.create_connection(srv.getsockname()); a, _ = srv.accept()
c.send(b'hi')
(names, a.recv(2))
""")
    assert r.value == (["lo"], b"hi")
