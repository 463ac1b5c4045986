"""Behaviour without a running cluster: clear errors, nothing left half-started."""
from __future__ import annotations

import time

import pytest

import actorium


def test_connecting_to_nothing_raises_connection_error_quickly():
    start = time.monotonic()
    with pytest.raises(ConnectionError):
        actorium.init(address="127.0.0.1:1")
    assert time.monotonic() - start < 10
    assert not actorium.is_initialized()


def test_api_before_init_is_a_clear_error():
    with pytest.raises(RuntimeError, match="init"):
        actorium.put(1)
