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
    # Inside an embedded test process auto-init would start a cluster: the error path
    # remains for callers that disabled the hook (and for the lowest layers).
    from actorium.core.objects import object_ref
    hook = object_ref._auto_init
    object_ref.set_auto_init(None)
    try:
        with pytest.raises(RuntimeError, match="init"):
            object_ref._current()
    finally:
        object_ref.set_auto_init(hook)


def test_a_session_directory_too_long_for_unix_sockets_is_a_clear_error(tmp_path):
    import os
    import subprocess
    import sys
    long_root = str(tmp_path / ("x" * 80))
    code = ("import actorium\ntry:\n    actorium.init(num_cpus=1)\nexcept ValueError as e:\n"
            "    print('VALUE_ERROR', e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, env=dict(os.environ, ACTORIUM_TMPDIR=long_root))
    assert "VALUE_ERROR" in out.stdout and "ACTORIUM_TMPDIR" in out.stdout, out.stderr
    assert not os.path.exists(long_root) or os.listdir(long_root) == []
