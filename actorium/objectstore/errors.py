"""Errors raised by the node-local object store."""
from __future__ import annotations

try:
    # Subclass the project-wide error so callers catching
    # ``actorium.exceptions.ObjectStoreFullError`` also catch this one.
    from actorium.exceptions import ObjectStoreFullError as _FullBase
except ImportError:  # the shared exceptions module is optional for this package
    _FullBase = Exception


class ObjectStoreFullError(_FullBase):
    """An object could not be placed in shared memory nor on disk.

    Raised by ``ObjectStore.put`` when, after evicting unpinned copies and
    spilling pinned ones, the object still does not fit; the message names the
    capacity, the bytes in use, the requested size and why spilling did not
    help. The store is left without any file or index record for the object.
    """

    def __init__(self, capacity: int, used: int, requested: int, reason: str):
        self.capacity = capacity
        self.used = used
        self.requested = requested
        self.reason = reason
        super().__init__(
            f"object store full: capacity={capacity} bytes, used={used} bytes, "
            f"requested={requested} bytes; {reason}")

    def __reduce__(self):
        # Errors cross processes; keep the structured fields through pickling.
        return (ObjectStoreFullError, (self.capacity, self.used, self.requested, self.reason))
