"""The reference table of one process: what it owns, what it borrows, and who waits.

Invariants:
* An owned object lives while its local ref count, its pins (pending tasks that take it
  as an argument) or its borrowers are non-zero; when all reach zero its value is
  dropped and its store copy freed.
* A borrowed entry registers this process as a borrower with the owner once, and
  unregisters when its local count drops to zero.
* Values are set at most once per entry; waiters fire exactly once, outside the lock.
"""
from __future__ import annotations

import threading

from actorium.core.objects.serialization import VALUE_STORED
from actorium.core.wire import protocol, transport


class Entry:
    __slots__ = ("owned", "owner", "local", "pins", "borrowers", "value", "waiters",
                 "registered", "contained", "requested", "node")

    def __init__(self, owned: bool, owner: str):
        self.owned = owned
        self.owner = owner
        self.local = 0
        self.pins = 0
        self.borrowers: dict[str, int] = {}
        self.value = None  # [kind, data, size] once known
        self.waiters: list = []
        self.registered = False  # borrower registration sent to the owner
        self.contained: list = []  # ObjectRefs nested in this value, kept alive with it
        self.requested = False  # a GetObject is in flight to the owner
        self.node = ""

    def in_use(self) -> bool:
        return self.local > 0 or self.pins > 0 or any(self.borrowers.values())


class ReferenceTable:
    def __init__(self, owner_addr: str, free_stored):
        self.addr = owner_addr
        self.lock = threading.Lock()
        self.entries: dict[bytes, Entry] = {}
        self._free_stored = free_stored  # callable(list of object ids) for store copies
        # Owned ids with no value that stand for something else, with what to do when the
        # last reference anywhere is gone: an actor's handles count as refs to its token
        # (ActorHandle), so borrowers in other processes keep it alive like any object.
        self.on_released: dict[bytes, object] = {}

    # -- counting -----------------------------------------------------------
    def add_local(self, object_id: bytes, owner: str) -> None:
        with self.lock:
            e = self.entries.get(object_id)
            if e is None:
                e = self.entries[object_id] = Entry(owner == self.addr, owner)
            e.local += 1

    def remove_local(self, object_id: bytes) -> None:
        with self.lock:
            e = self.entries.get(object_id)
            if e is None:
                return
            e.local -= 1
            if e.in_use():
                return
            released = self._release(object_id, e)
        self._after_release(object_id, *released)

    def note_borrowed(self, object_id: bytes, owner: str) -> None:
        """This process deserialized a ref it does not own: tell the owner once.

        Sent from the calling thread so it is ordered before any reply that thread
        sends afterwards (the owner must not free the object in between)."""
        with self.lock:
            e = self.entries.get(object_id)
            if e is None or e.registered or e.owned:
                return
            e.registered = True
        transport.send(owner, protocol.AddBorrower(object_id, self.addr))

    def adopt_borrow(self, object_id: bytes, owner: str) -> None:
        """A worker registered us as borrower on our behalf; take that registration over."""
        with self.lock:
            e = self.entries.get(object_id)
            duplicate = e is not None and e.registered
            if e is not None:
                e.registered = True
        if duplicate:
            transport.send(owner, protocol.RemoveBorrower(object_id, self.addr))

    def pin(self, object_id: bytes) -> None:
        with self.lock:
            e = self.entries.get(object_id)
            if e is not None:
                e.pins += 1

    def unpin(self, object_id: bytes) -> None:
        with self.lock:
            e = self.entries.get(object_id)
            if e is None:
                return
            e.pins -= 1
            if e.in_use():
                return
            released = self._release(object_id, e)
        self._after_release(object_id, *released)

    def borrower_delta(self, object_id: bytes, borrower: str, delta: int) -> None:
        with self.lock:
            e = self.entries.get(object_id)
            if e is None or not e.owned:
                return
            n = e.borrowers.get(borrower, 0) + delta
            if n:
                e.borrowers[borrower] = n
            else:
                e.borrowers.pop(borrower, None)
            if e.in_use():
                return
            released = self._release(object_id, e)
        self._after_release(object_id, *released)

    def _release(self, object_id: bytes, e: Entry):
        del self.entries[object_id]
        stored = e.owned and e.value is not None and e.value[0] == VALUE_STORED
        # Where the primary copy lives ("" for this node, in older 3-element values).
        stored = (e.value[3] if len(e.value) > 3 else "") if stored else None
        unregister = (not e.owned) and e.registered
        hook = self.on_released.pop(object_id, None) if self.on_released else None
        return stored, unregister, e.owner, e.contained, hook

    def _after_release(self, object_id, stored, unregister, owner, contained, hook) -> None:
        # ``contained`` refs die with this function's frame, uncounting themselves.
        if hook is not None:
            hook()
        if stored is not None:
            self._free_stored([object_id], stored)
        if unregister:
            try:
                transport.send(owner, protocol.RemoveBorrower(object_id, self.addr))
            except Exception:  # the owner's process or our context is gone: nothing to do
                pass

    # -- values -------------------------------------------------------------
    def ensure(self, object_id: bytes, owner: str) -> Entry:
        """Entry for ``object_id`` (caller holds ``lock``)."""
        e = self.entries.get(object_id)
        if e is None:
            e = self.entries[object_id] = Entry(owner == self.addr, owner)
        return e

    def set_value(self, object_id: bytes, value: list, contained=()) -> bool:
        """Record a value; fire waiters. False if nobody references the object anymore."""
        with self.lock:
            e = self.entries.get(object_id)
            if e is None:
                return False
            if e.value is not None:
                return True
            e.value = value
            if contained:
                e.contained = list(contained)
            waiters, e.waiters = e.waiters, []
        for w in waiters:
            w(object_id, value)
        return True

    def get_value(self, object_id: bytes):
        e = self.entries.get(object_id)
        return None if e is None else e.value

    def add_waiter(self, object_id: bytes, owner: str, callback) -> list | None:
        """Call ``callback(object_id, value)`` when the value is known. Returns the value
        instead (without registering) if it is known already."""
        with self.lock:
            e = self.ensure(object_id, owner)
            if e.value is not None:
                return e.value
            e.waiters.append(callback)
            return None

    def stats(self) -> dict:
        with self.lock:
            owned = sum(1 for e in self.entries.values() if e.owned)
            return {"entries": len(self.entries), "owned": owned}
