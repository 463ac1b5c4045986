"""Worker stdout/stderr forwarded line by line to the drivers, tagged with who wrote it."""
from __future__ import annotations

import io
import os
import threading

from actorium.core.wire import protocol, transport


# Driver side: lines that carry a marker are handed to the layer that registered it
# (e.g. progress bar updates for actorium.experimental.tqdm_ray) instead of printed.
_line_handlers: dict = {}


def register_line_handler(marker: str, handler) -> None:
    """Lines of worker output containing ``marker`` go to ``handler(line, pid, name)``
    in the driver, on the thread that receives output, instead of being printed."""
    _line_handlers[marker] = handler


def unhandled_lines(msg) -> list:
    """The lines of a LogBatch to print; lines with a registered marker are handled."""
    if not _line_handlers:
        return msg.lines
    out = []
    for line in msg.lines:
        for marker, handler in _line_handlers.items():
            if marker in line:
                try:
                    handler(line, msg.pid, msg.name)
                except Exception:
                    pass  # a broken renderer must not stop the output of other lines
                break
        else:
            out.append(line)
    return out


class LineForwarder(io.TextIOBase):
    """A text stream that sends complete lines to the raylet as LogBatch messages.

    The raylet relays them to drivers, which print ``(name pid=N) line``. Partial lines
    wait for their newline or an explicit flush."""

    def __init__(self, raylet_addr: str, stream: str, executor):
        self._addr = raylet_addr
        self._stream = stream
        self._executor = executor
        self._buf = ""
        self._lock = threading.Lock()

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        with self._lock:
            self._buf += text
            if "\n" not in self._buf:
                return len(text)
            *lines, self._buf = self._buf.split("\n")
        self._send(lines)
        return len(text)

    def flush(self) -> None:
        with self._lock:
            lines, self._buf = ([self._buf] if self._buf else []), ""
        if lines:
            self._send(lines)

    def _send(self, lines) -> None:
        try:
            transport.send(self._addr, protocol.LogBatch(
                os.getpid(), self._executor.name, self._stream, lines, self._executor.cw.job))
        except Exception:
            pass  # output is best effort; the process may be shutting down

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        return 1 if self._stream == "stdout" else 2
