"""The cluster's web dashboard and Prometheus ``/metrics``, served by the head.

``actorium start --head --dashboard-port N`` starts it with the head; a driver's first
``actorium.dashboard_url()`` starts one for an embedded cluster (or for a cluster
started without one), stopped at ``actorium.shutdown()``. The page and every endpoint
require the cluster token (``server.py``). Needs the ``actorium[dashboard]`` extra
(prometheus_client).
"""
from __future__ import annotations

import os
import threading

from actorium.core import api, launcher
from actorium.core.wire import auth
from actorium.core.worker import core_worker

__all__ = ["dashboard_url"]

_lock = threading.Lock()
_started: dict = {}  # the process this driver started: {"proc", "url"}


def dashboard_url(login: bool = False) -> str:
    """The base URL of the cluster's dashboard (``/metrics`` is beneath it), starting
    the dashboard if this cluster has none yet. ``login=True`` returns the address a
    person opens once in a browser: it carries the cluster token, so keep it private."""
    worker = core_worker.global_worker()
    if worker is None:
        raise RuntimeError("actorium.dashboard_url() needs a cluster: call actorium.init() first")
    with _lock:
        url = _started.get("url") or _recorded_url(worker) or _start(worker)
    return f"{url}/?token={auth.process_token().value}" if login else url


def _recorded_url(worker) -> str:
    """The dashboard ``actorium start --head --dashboard-port`` recorded for this cluster."""
    current = launcher.read_current() or {}
    if current.get("dashboard_url") and worker.gcs_addr in (current.get("gcs_tcp"),
                                                            current.get("gcs_addr")):
        from actorium.dashboard.launch import process_alive
        if process_alive(current.get("dashboard_pid", 0), "actorium.dashboard"):
            return current["dashboard_url"]
    return ""


def _start(worker) -> str:
    from actorium.dashboard import launch
    node = api._session.proc
    proc, info = launch.start(worker.gcs_addr, worker.session_dir, auth.process_token(),
                              watch_pid=node.pid if node is not None else os.getpid())
    _started.update(proc=proc, url=info["url"])
    api.on_shutdown(_stop)
    return info["url"]


def _stop() -> None:
    from actorium.dashboard import launch
    with _lock:
        proc = _started.pop("proc", None)
        _started.clear()
    if proc is not None:
        launch.stop(proc)
