"""examples/booking_agent.py under chaos: agent processes SIGKILLed at random while
sessions run; no booking is duplicated or inconsistent with the agents' answers and logs."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_example(*args: str, timeout: int = 300) -> dict:
    root = tempfile.mkdtemp(prefix="ax-book-", dir="/tmp")
    try:
        env = dict(os.environ, ACTORIUM_TMPDIR=root, PYTHONUNBUFFERED="1")
        env.pop("ACTORIUM_ADDRESS", None)
        out = subprocess.run([sys.executable, str(ROOT / "examples" / "booking_agent.py"),
                              *args], cwd=ROOT, env=env, text=True, capture_output=True,
                             timeout=timeout)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    assert out.returncode == 0, out.stdout + out.stderr
    numbers = dict(re.findall(r"(injected crashes|injected node kills|duplicate bookings|"
                              r"inconsistent): (\d+)",
                              out.stdout))
    return {k: int(v) for k, v in numbers.items()}


@pytest.mark.timeout(200)
def test_small_chaos_run_has_no_duplicate_or_inconsistent_booking():
    got = run_example("--chaos", "--sessions", "12", "--parallel", "6",
                      "--interval", "0.05", "--min-crashes", "3", timeout=180)
    assert got["injected crashes"] >= 3
    assert got["duplicate bookings"] == 0 and got["inconsistent"] == 0


@pytest.mark.slow
@pytest.mark.timeout(700)
def test_full_chaos_run_100_sessions_at_least_20_crashes_no_duplicates():
    got = run_example("--chaos", timeout=600)
    assert got["injected crashes"] >= 20
    assert got["duplicate bookings"] == 0 and got["inconsistent"] == 0


@pytest.mark.timeout(200)
def test_chaos_run_on_three_nodes_killing_nodes_has_no_duplicate_booking():
    got = run_example("--chaos", "--nodes", "3", "--sessions", "16", "--parallel", "6",
                      "--interval", "0.1", "--node-interval", "1.0", "--min-crashes", "3",
                      timeout=180)
    assert got["injected node kills"] >= 1 and got["injected crashes"] >= 3
    assert got["duplicate bookings"] == 0 and got["inconsistent"] == 0


@pytest.mark.slow
@pytest.mark.timeout(700)
def test_full_chaos_run_on_three_nodes_with_node_kills_no_duplicates():
    got = run_example("--chaos", "--nodes", "3", timeout=600)
    # how many node kills fit depends on how fast the run goes; at least one must happen
    assert got["injected node kills"] >= 1 and got["injected crashes"] >= 20
    assert got["duplicate bookings"] == 0 and got["inconsistent"] == 0
