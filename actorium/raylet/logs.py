"""Reading this node's process logs for ``actorium logs`` and the dashboard.

Every worker's stdout and stderr land in ``logs/worker-<id>.log`` of the session
directory (the zygote points fds 1 and 2 there; ``core/worker/output.py`` writes the
Python-level lines and rotates the file to ``.1``). A task's output is preceded by a
marker line ``:task <id> <name>:`` (written only when a task prints), which is what
``--task`` searches for. Names are checked to be bare file names: a request can read
nothing outside the node's log directory.
"""
from __future__ import annotations

import os
import re

MAX_READ = 1 << 20
_NAME = re.compile(r"^[A-Za-z0-9_.-]+\.(log|err|out)(\.1)?$")


def read(log_dir: str, msg) -> object:
    if msg.file == "*":
        return list_files(log_dir)
    if not msg.file and msg.task:
        return find_task(log_dir, msg.task)
    if not _NAME.match(msg.file or ""):
        raise ValueError(f"not a log file name: {msg.file!r}")
    path = os.path.join(log_dir, msg.file)
    try:
        size = os.path.getsize(path)
    except OSError:
        return {"file": msg.file, "data": b"", "offset": 0, "size": -1}
    length = max(0, min(msg.length or MAX_READ, MAX_READ))
    with open(path, "rb") as f:
        if msg.offset < 0:  # the last -offset lines
            start = max(0, size - MAX_READ)
            f.seek(start)
            data = f.read(size - start)
            lines = data.splitlines(keepends=True)[msg.offset:]
            data = b"".join(lines)
            return {"file": msg.file, "data": data, "offset": size, "size": size}
        offset = msg.offset if msg.offset <= size else 0  # rotated: start again
        f.seek(offset)
        data = f.read(length)
    return {"file": msg.file, "data": data, "offset": offset + len(data), "size": size}


def list_files(log_dir: str) -> list:
    out = []
    try:
        names = sorted(os.listdir(log_dir))
    except OSError:
        return out
    for name in names:
        if _NAME.match(name):
            try:
                st = os.stat(os.path.join(log_dir, name))
            except OSError:
                continue
            out.append([name, st.st_size, st.st_mtime])
    return out


def find_task(log_dir: str, task: str) -> dict:
    """The output of task ``task`` (a hex id or its prefix): the lines after its marker
    up to the next marker, from whichever worker log holds it."""
    task = task.lower()
    if not re.fullmatch(r"[0-9a-f]{4,64}", task):
        raise ValueError(f"not a task id: {task!r}")
    needle = f":task {task}".encode()
    for name, _size, _mtime in list_files(log_dir):
        if not name.startswith("worker-"):
            continue
        with open(os.path.join(log_dir, name), "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 8 * MAX_READ))
            data = f.read()
        at = data.find(needle)
        if at < 0:
            continue
        out = []
        for line in data[at:].splitlines(keepends=True)[1:]:
            if line.startswith(b":task "):
                if line.startswith(needle):
                    continue
                break
            out.append(line)
        return {"file": name, "data": b"".join(out), "offset": 0, "size": size}
    return {"file": "", "data": b"", "offset": 0, "size": -1}
