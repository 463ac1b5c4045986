"""Every message that crosses a process boundary, declared once.

A message is a slotted dataclass with a class-level ``op`` name. On the wire it is a
msgpack array ``[op, field1, field2, ...]`` in declaration order; sender and receiver
share this package, so the wire format is written down exactly once. Only plain
msgpack types travel here (never pickle): user values ride inside ``bytes`` fields
as serialized blobs that only authenticated cluster peers ever unpickle.

The messages are grouped by the peers that exchange them; this list of modules is the
whole protocol (a duplicate ``op`` fails at import):

* ``calls``: owner <-> executing worker, and objects between owners and borrowers;
* ``node``: core worker or gcs <-> raylet, and sandbox requests relayed by a raylet;
* ``control``: anyone <-> gcs;
* ``durable``: the durable store held by the gcs.

Invariant: field order is the wire order; adding a field means appending it.
"""
from actorium.core.wire.protocol._codec import PROTOCOL_VERSION, ProtocolError, decode, encode
from actorium.core.wire.protocol.calls import *  # noqa: F401,F403
from actorium.core.wire.protocol.control import *  # noqa: F401,F403
from actorium.core.wire.protocol.durable import *  # noqa: F401,F403
from actorium.core.wire.protocol.node import *  # noqa: F401,F403
