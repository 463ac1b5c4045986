"""Helpers shared by the security tests."""
from __future__ import annotations

import socket
import time

from actorium.core.wire import guard


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


def logged_refusal(head, needles: tuple, attack) -> tuple[str, object]:
    """Run ``attack()`` until a log line with every needle appears; return (line, what
    the last attack returned). Refusal lines are rate-limited per process (LOG_BURST per
    LOG_WINDOW): when earlier tests used up a window's budget an attack is refused but
    not logged, so it is repeated, for a window and a bit at most."""
    deadline = time.monotonic() + guard.LOG_WINDOW + 5
    while True:
        seen = len(head.log_lines(*needles))
        result = attack()
        try:
            return head.wait_log(*needles, after=seen, timeout=1.0), result
        except AssertionError:
            if time.monotonic() > deadline:
                raise
