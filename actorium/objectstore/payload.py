"""Payload files of the object store: writing, moving and read-only mapping.

Invariants the store relies on:
  * a payload file only ever appears under its final name complete, because it
    is written under a temporary name in the same directory and then renamed;
  * a mapping returned by ``map_readonly`` stays valid after the file is
    unlinked or renamed, because the mapping pins the inode, not the name;
  * mappings are read-only (PROT_READ), so no reader can corrupt a payload.
"""
from __future__ import annotations

import errno
import mmap
import os
import pickle
import shutil
import threading
import uuid

TEMP_SUFFIX = ".tmp"


def byte_views(parts: list) -> list[memoryview]:
    """Flat unsigned-byte views of buffer-like ``parts``, without copying them.

    Accepts anything exposing a contiguous buffer (bytes, bytearray, memoryview,
    ``pickle.PickleBuffer``, numpy arrays); non-contiguous buffers raise
    ``BufferError`` because writing them would need a hidden copy.
    """
    return [pickle.PickleBuffer(part).raw() for part in parts]


def temp_path(directory: str, name: str) -> str:
    """A fresh temporary name in ``directory``, unique across processes and threads."""
    unique = f"{os.getpid()}.{threading.get_ident()}.{uuid.uuid4().hex[:8]}"
    return os.path.join(directory, f".{name}.{unique}{TEMP_SUFFIX}")


def write_temp(directory: str, name: str, views: list[memoryview]) -> str:
    """Write the concatenation of ``views`` to a new temporary file; return its path.

    On any error the temporary file is removed before the error propagates.
    """
    path = temp_path(directory, name)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        for view in views:
            offset = 0
            while offset < view.nbytes:
                # os.write may write less than asked (large buffers, signals).
                offset += os.write(fd, view[offset:])
    except BaseException:
        os.close(fd)
        remove_quietly(path)
        raise
    os.close(fd)
    return path


def move(src: str, dst: str) -> None:
    """Move ``src`` to ``dst`` such that ``dst`` appears complete or not at all.

    Within one filesystem this is a rename. Across filesystems (tmpfs to disk)
    the file is copied to a temporary name beside ``dst``, renamed, and only then
    is ``src`` unlinked, so at every instant at least one complete copy exists.
    """
    try:
        os.rename(src, dst)
        return
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
    tmp = temp_path(os.path.dirname(dst), os.path.basename(dst))
    try:
        shutil.copyfile(src, tmp)
        os.rename(tmp, dst)
    except BaseException:
        remove_quietly(tmp)
        raise
    os.unlink(src)


def map_readonly(path: str, populate: bool = False) -> memoryview | None:
    """A read-only memoryview over a shared mapping of ``path``; None if it does not exist.
    ``populate`` maps every page up front (one call instead of a fault per page), for a
    reader that will touch all of it, such as a node serving the object to another."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        size = os.fstat(fd).st_size
        if size == 0:
            # mmap refuses zero-length mappings; an empty bytes view is equally read-only.
            return memoryview(b"")
        # The view keeps the mmap object alive; the mapping outlives the fd.
        if populate and hasattr(mmap, "MAP_POPULATE"):
            return memoryview(mmap.mmap(fd, size, flags=mmap.MAP_SHARED | mmap.MAP_POPULATE,
                                        prot=mmap.PROT_READ))
        return memoryview(mmap.mmap(fd, size, access=mmap.ACCESS_READ))
    finally:
        os.close(fd)


def remove_quietly(path: str) -> None:
    """Unlink ``path`` if it exists."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
