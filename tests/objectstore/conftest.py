"""Fixtures for the object store tests."""
import os
import sys

import pytest

# Spawned worker processes import the test modules by name; make sure they can
# also import ``actorium`` when pytest was started from another directory.
_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if _REPO_ROOT not in sys.path:
    sys.path.insert(0, _REPO_ROOT)

from actorium.objectstore import ObjectStore  # noqa: E402


@pytest.fixture
def paths(tmp_path):
    """(root, spill_dir) under tmp_path; both removed after the test."""
    root, spill = str(tmp_path / "store"), str(tmp_path / "spill")
    yield root, spill
    ObjectStore.destroy(root, spill)


@pytest.fixture
def make_store(paths):
    """Factory for stores on ``paths``; every store it made is closed afterwards."""
    made = []

    def make(capacity=1 << 20, spill=True, create=True):
        store = ObjectStore(paths[0], capacity, paths[1] if spill else None, create=create)
        made.append(store)
        return store

    yield make
    for store in made:
        store.close()
