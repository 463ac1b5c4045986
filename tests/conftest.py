"""Shared fixtures: every test that starts a cluster tears it down, even on failure."""
from __future__ import annotations

import os
import sys

import pytest

import actorium

sys.path.insert(0, os.path.dirname(__file__))


@pytest.fixture
def cluster():
    """A fresh embedded 2-CPU cluster for one test."""
    actorium.init(num_cpus=2)
    try:
        yield
    finally:
        actorium.shutdown()


@pytest.fixture(scope="module")
def shared_cluster():
    """One embedded cluster for a whole test module (for tests that leave no state)."""
    actorium.init(num_cpus=2)
    try:
        yield
    finally:
        actorium.shutdown()
