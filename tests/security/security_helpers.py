"""Helpers shared by the security tests."""
from __future__ import annotations

import socket


def closed_by_peer(sock: socket.socket, timeout: float = 10.0) -> bool:
    """Read until the server closes the connection (True) or ``timeout`` passes."""
    sock.settimeout(timeout)
    try:
        while sock.recv(65536):
            pass
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False
    return True
