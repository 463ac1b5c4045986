"""Identifiers. Object ids are a task id plus a return index, so an owner can name a
task's results before they exist; everything else is random."""
from __future__ import annotations

import os
import struct

TASK_ID_LEN = 14
_index = struct.Struct(">H")


def new_task_id() -> bytes:
    return os.urandom(TASK_ID_LEN)


def object_id_for(task_id: bytes, index: int) -> bytes:
    """The id of return value ``index`` of ``task_id`` (16 bytes). Index 0xFFFF marks puts."""
    return task_id + _index.pack(index)


def new_put_id() -> bytes:
    return os.urandom(TASK_ID_LEN) + b"\xff\xff"


def new_worker_id() -> bytes:
    return os.urandom(12)


def new_actor_id() -> bytes:
    return os.urandom(12)


def new_node_id() -> str:
    return os.urandom(8).hex()
