"""Headless Chromium for the dashboard tests: the Debian ``chromium`` package, run
with a fresh profile and nothing that reaches the network on its own."""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run",
         "--disable-dev-shm-usage"]


def chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def _run(args: list, timeout: float) -> subprocess.CompletedProcess:
    profile = tempfile.mkdtemp(prefix="actorium-chromium-")
    try:
        return subprocess.run([chromium(), *FLAGS, f"--user-data-dir={profile}", *args],
                              capture_output=True, timeout=timeout)
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def dump_dom(url: str, budget_ms: int = 4000, timeout: float = 60) -> str:
    """The page's DOM after its scripts ran for ``budget_ms`` of virtual time (the
    page's fetches and timers included)."""
    r = _run([f"--virtual-time-budget={budget_ms}", "--dump-dom", url], timeout)
    return r.stdout.decode("utf-8", "replace")


def screenshot(url: str, path: str, size: str = "1400,1200", budget_ms: int = 4000,
               timeout: float = 60) -> bool:
    r = _run([f"--virtual-time-budget={budget_ms}", f"--window-size={size}",
              f"--screenshot={os.path.abspath(path)}", "--hide-scrollbars", url], timeout)
    return r.returncode == 0 and os.path.exists(path)
