"""The message codec: a message class registers under its ``op``; on the wire it is a
msgpack array ``[op, field1, field2, ...]`` in declaration order."""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import msgpack

# 2: ActorInit.durable and the durable store messages; 3: JournalBegin.attempt, Replica*;
# 4: CancelTask.recursive; 5: ActorInit.durable became ActorInit.runtime (any registered
# actor runtime); 6: right-sizing and autoscaling (RegisterActor/StartActor.auto,
# NodeHeartbeat demand, ActorOutgrown, DrainNode)
PROTOCOL_VERSION = 6

_BY_OP: dict[str, type] = {}
_FIELDS: dict[type, tuple[str, ...]] = {}

_packb = msgpack.Packer(use_bin_type=True).pack


def _message(cls):
    """Register a message class under its ``op`` and freeze its field order."""
    cls = dataclass(slots=True)(cls)
    if cls.op in _BY_OP:
        raise RuntimeError(f"duplicate message op {cls.op!r}")
    _BY_OP[cls.op] = cls
    _FIELDS[cls] = tuple(f.name for f in fields(cls))
    return cls


def encode(msg) -> bytes:
    names = _FIELDS[type(msg)]
    return _packb([msg.op, *[getattr(msg, n) for n in names]])


class ProtocolError(Exception):
    """A peer sent bytes that are not a known, well-formed message."""


def decode(data) -> Any:
    try:
        items = msgpack.unpackb(data, raw=False, use_list=True, strict_map_key=False)
        cls = _BY_OP[items[0]]
        return cls(*items[1:])
    except Exception as exc:  # any malformed input is the peer's fault, never ours
        raise ProtocolError(f"undecodable message ({len(data)} bytes): {exc}") from None
