"""The examples run as a user runs them: scripts in a subprocess, the notebook in a real
Jupyter kernel. Each run gets its own ACTORIUM_TMPDIR, so the leftover-process check sees
only the cluster this test started, even while other suites run clusters of their own.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
SCRIPT_TIMEOUT = 120
OTHER_SCRIPTS = sorted(p for p in EXAMPLES.glob("*.py") if p.name != "agent_swarm.py")


@pytest.fixture
def session_root():
    """A private, short directory for the run's sessions (ipc socket paths live in it and
    must stay under the ~107-byte limit, so no deep pytest tmp_path)."""
    root = tempfile.mkdtemp(prefix="ax-ex-", dir="/tmp")
    try:
        yield root
    finally:
        _assert_no_leftovers(root)
        shutil.rmtree(root, ignore_errors=True)


def _node_processes(root: str) -> list[psutil.Process]:
    """Node daemons, zygotes and workers of sessions under ``root``: the zygote and the
    workers are forked from the node, so they all carry its command line."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmd = " ".join(proc.info["cmdline"] or [])
        if "actorium.raylet.node" in cmd and root in cmd:
            found.append(proc)
    return found


def _assert_no_leftovers(root: str) -> None:
    # A node whose driver died notices within half a second; allow a little slack.
    deadline = time.monotonic() + 5
    while _node_processes(root) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = _node_processes(root)
    for proc in left:  # do not leak them into other tests, but still fail this one
        try:
            proc.kill()
        except psutil.Error:
            pass
    assert not left, f"leftover actorium processes: {[p.pid for p in left]}"
    sessions = [p.name for p in Path(root).glob("s-*")]
    shm = [s for s in sessions if os.path.exists(f"/dev/shm/actorium/{s}")]
    assert not shm, f"leftover object store directories: {shm}"


def _run_script(path: Path, session_root: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, ACTORIUM_TMPDIR=session_root, PYTHONUNBUFFERED="1")
    env.pop("ACTORIUM_ADDRESS", None)  # always an embedded cluster of our own
    proc = subprocess.run([sys.executable, str(path)], cwd=ROOT, env=env, text=True,
                          capture_output=True, timeout=SCRIPT_TIMEOUT)
    assert proc.returncode == 0, (f"{path.name} exited with {proc.returncode}\n"
                                  f"--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}")
    return proc


@pytest.mark.timeout(SCRIPT_TIMEOUT + 30)
def test_agent_swarm_demo_runs_and_prints_summary(session_root):
    out = _run_script(EXAMPLES / "agent_swarm.py", session_root).stdout
    summary = [line for line in out.splitlines() if line.startswith("summary: wall ")]
    assert summary, out
    assert "tasks/s" in summary[0]
    assert "fanning out" in out and "planner> " in out


@pytest.mark.timeout(SCRIPT_TIMEOUT + 30)
@pytest.mark.parametrize("script", OTHER_SCRIPTS, ids=[p.name for p in OTHER_SCRIPTS])
def test_other_example_script_runs(script, session_root):
    _run_script(script, session_root)


def test_committed_notebook_has_no_outputs():
    nbformat = pytest.importorskip("nbformat")
    nb = nbformat.read(EXAMPLES / "quickstart.ipynb", as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, cell.source[:60]


@pytest.fixture
def private_kernel(session_root, monkeypatch, tmp_path):
    """A 'python3' kernelspec, visible only to this test, that runs this interpreter
    (the venv's) with the run's ACTORIUM_TMPDIR. Nothing is registered globally."""
    spec_dir = tmp_path / "jupyter" / "kernels" / "python3"
    spec_dir.mkdir(parents=True)
    (spec_dir / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (actorium tests)", "language": "python",
        "env": {"ACTORIUM_TMPDIR": session_root},
    }))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    monkeypatch.delenv("ACTORIUM_ADDRESS", raising=False)
    return "python3"


@pytest.mark.timeout(SCRIPT_TIMEOUT + 30)
def test_quickstart_notebook_executes(private_kernel):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    nb = nbformat.read(EXAMPLES / "quickstart.ipynb", as_version=4)
    client = nbclient.NotebookClient(nb, timeout=SCRIPT_TIMEOUT, kernel_name=private_kernel,
                                     resources={"metadata": {"path": str(EXAMPLES)}})
    client.execute()
    # Printed output, whitespace-normalized: streamed prints arrive in several chunks.
    text = " ".join("".join(out.get("text", "") for cell in nb.cells
                            if cell.cell_type == "code" for out in cell.outputs
                            if out.get("output_type") == "stream").split())
    assert "[0, 1, 4, 9, 16, 25, 36, 49, 64, 81] 13 " in text
    assert "equal: True, writeable: False" in text
    assert "agents stream their answers token by token" in text
    assert text.endswith("False")  # is_initialized() after shutdown()
