"""Worker stdout/stderr: forwarded line by line to the drivers, tagged with who wrote it,
and kept in the worker's own log file, rotated.

The zygote points fds 1 and 2 of each worker at ``logs/worker-<id>.log``, so output
written below Python (C code, subprocesses, a crashing interpreter) lands there. The
Python-level lines go there too, written here, so the file is the whole record of the
process (``actorium logs``). When a task or actor call prints, a marker line
``:task <id> <name>:`` comes first, so ``actorium logs --task`` can find its output;
nothing is written for calls that print nothing. A file above
``ACTORIUM_LOG_MAX_BYTES`` (default 64 MiB) is renamed to ``.1`` (replacing the previous
one) and a fresh one is opened on fds 1 and 2.
"""
from __future__ import annotations

import io
import os
import threading

from actorium.core.wire import protocol, transport

MAX_LOG_BYTES = int(os.environ.get("ACTORIUM_LOG_MAX_BYTES", str(64 << 20)))


class LogFile:
    """The worker's log file behind fds 1 and 2, shared by its two forwarders."""

    def __init__(self, path: str, max_bytes: int = MAX_LOG_BYTES):
        self.path = path
        self.max_bytes = max_bytes
        self.lock = threading.Lock()
        self.marked = b""
        try:
            self.size = os.fstat(1).st_size
        except OSError:
            self.size = 0

    def write(self, task_id: bytes, name: str, lines: list) -> None:
        with self.lock:
            out = []
            if task_id and task_id != self.marked:
                self.marked = task_id
                out.append(f":task {task_id.hex()} {name}:")
            out.extend(lines)
            data = ("\n".join(out) + "\n").encode("utf-8", "replace")
            try:
                if self.size + len(data) > self.max_bytes and self.path:
                    self._rotate()
                os.write(1, data)
                self.size += len(data)
            except OSError:
                pass  # best effort, as the relay to drivers

    def _rotate(self) -> None:
        os.replace(self.path, self.path + ".1")
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)
        self.size = 0
        self.marked = b""


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
    """A text stream that sends complete lines to the raylet as LogBatch messages and
    appends them to the worker's log file.

    The raylet relays them to drivers, which print ``(name pid=N) line``. Partial lines
    wait for their newline or an explicit flush."""

    def __init__(self, raylet_addr: str, stream: str, executor, log: LogFile | None = None):
        self._addr = raylet_addr
        self._stream = stream
        self._executor = executor
        self._log = log
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
        executor = self._executor
        if self._log is not None:
            self._log.write(executor.running, executor.name, lines)
        try:
            transport.send(self._addr, protocol.LogBatch(
                os.getpid(), executor.name, self._stream, lines, executor.cw.job))
        except Exception:
            pass  # output is best effort; the process may be shutting down

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        return 1 if self._stream == "stdout" else 2
