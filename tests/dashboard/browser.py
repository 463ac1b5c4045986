"""Headless Chromium for the dashboard tests: the Debian ``chromium`` package, run
with a fresh profile and nothing that reaches the network on its own."""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time

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


class DevTools:
    """Chromium driven over the DevTools protocol (websocket-client), in real time: for
    measuring how long a page takes, which ``--virtual-time-budget`` cannot."""

    def __init__(self, timeout: float = 30):
        import json
        import re
        import urllib.request

        import websocket
        self._json = json
        self.profile = tempfile.mkdtemp(prefix="actorium-chromium-")
        self.proc = subprocess.Popen(
            [chromium(), *FLAGS, f"--user-data-dir={self.profile}",
             "--remote-debugging-port=0", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        port_file = os.path.join(self.profile, "DevToolsActivePort")
        deadline = time.monotonic() + timeout
        while not os.path.exists(port_file) or not open(port_file).read().strip():
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.close()
                raise TimeoutError("chromium did not open its DevTools port")
            time.sleep(0.05)
        port = int(open(port_file).read().split()[0])
        pages = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/json",
                                                  timeout=timeout).read())
        target = next(p for p in pages if p.get("type") == "page")
        self.ws = websocket.create_connection(target["webSocketDebuggerUrl"], timeout=timeout,
                                             suppress_origin=True)
        self.next_id = 0
        self._re = re

    def call(self, method: str, **params):
        self.next_id += 1
        self.ws.send(self._json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            msg = self._json.loads(self.ws.recv())
            if msg.get("id") == self.next_id:
                return msg.get("result", {})

    def evaluate(self, expression: str):
        r = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return r.get("result", {}).get("value")

    def close(self) -> None:
        try:
            self.ws.close()
        except Exception:
            pass
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        shutil.rmtree(self.profile, ignore_errors=True)
