"""The README's "Sandboxes" example runs as written (in a subprocess of its own)."""
import os
import re
import subprocess
import shutil
import sys
import tempfile

import pytest

pytestmark = pytest.mark.jail

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def readme_block(heading: str) -> str:
    with open(os.path.join(ROOT, "README.md")) as f:
        text = f.read()
    section = text.split(f"## {heading}\n", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_readme_sandbox_example_runs(tmp_path):
    script = tmp_path / "example.py"
    script.write_text(readme_block("Sandboxes"))
    sessions = tempfile.mkdtemp(prefix="ac-readme-", dir="/tmp")  # short: unix socket paths
    env = dict(os.environ, ACTORIUM_TMPDIR=sessions)
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         timeout=120, env=env, cwd=ROOT)
    shutil.rmtree(sessions, ignore_errors=True)
    assert out.returncode == 0, out.stderr
    assert "{'answer': 42}" in out.stdout and "2" in out.stdout.splitlines()[-1]
