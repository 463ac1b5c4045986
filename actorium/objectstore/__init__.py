"""Node-local shared-memory object store (LMDB index, mmapped payload files)."""
from .errors import ObjectStoreFullError
from .store import ObjectStore

__all__ = ["ObjectStore", "ObjectStoreFullError"]
