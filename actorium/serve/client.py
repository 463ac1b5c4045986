"""One ``RouterClient`` per process: its routers, and the thread that keeps them in
step with the controller.

The thread long-polls ``controller.sync`` — reporting each router's in-flight and
queued requests and receiving every table that changed. It polls faster while
requests are in flight (the controller scales on these reports) and stops when the
process's core worker goes away (``shutdown``).
"""
from __future__ import annotations

import threading
import time
import uuid

from actorium.exceptions import ActorDiedError, DeploymentError
from actorium.serve import _runtime as rt
from actorium.serve.names import NAME, NAMESPACE
from actorium.serve.router import Router

IDLE_POLL_S = 0.5
BUSY_POLL_S = 0.1
RPC_TIMEOUT_S = 10.0

_lock = threading.Lock()
_client: "RouterClient | None" = None


def client() -> "RouterClient":
    """This process's client, made anew after each ``init``."""
    global _client
    worker = rt.current_worker()
    if worker is None:
        raise RuntimeError("actorium is not initialized: call actorium.init() first")
    with _lock:
        if _client is None or _client.worker is not worker:
            _client = RouterClient(worker)
        return _client


def controller_handle():
    """The cluster's controller actor (``api`` creates it with the first deployment)."""
    try:
        return rt.get_actor(NAME, namespace=NAMESPACE)
    except ValueError:
        raise DeploymentError("no deployments in this cluster (the serve controller is "
                              "not running; actorium.deploy() starts it)") from None


def deployments() -> dict:
    """name -> status: replicas running (and starting, draining), durable sessions open,
    requests ongoing and queued, route, replica bounds."""
    try:
        controller = controller_handle()
    except DeploymentError:
        return {}
    return rt.get(controller.status.remote(), timeout=30)


def delete_deployment(name: str, timeout: float = 60.0) -> None:
    """Stop a deployment: its replicas drain (requests in flight finish) and stop."""
    if not rt.get(controller_handle().delete.remote(name, timeout), timeout=timeout + 10):
        raise ValueError(f"no deployment named {name!r}")


class RouterClient:
    def __init__(self, worker):
        self.worker = worker
        self.id = uuid.uuid4().hex
        self.routers: dict[str, Router] = {}
        self.catalog: dict = {}
        self._lock = threading.Lock()
        self._controller = None
        self._thread: threading.Thread | None = None

    def controller(self):
        if self._controller is None:
            self._controller = controller_handle()
        return self._controller

    def router(self, name: str) -> Router:
        r = self.routers.get(name)
        if r is not None and r.table is not None:
            return r
        with self._lock:
            r = self.routers.get(name)
            if r is None or r.table is None:
                r = Router(name, self)
                reply = self._sync({name: -1}, {}, 0.0)
                table = reply["tables"].get(name)
                if table is None:
                    raise DeploymentError(f"no deployment named {name!r}; deployments: "
                                          f"{', '.join(sorted(self.catalog)) or 'none'}")
                r.apply(table)
                self.routers[name] = r
            self._ensure_thread()
        return r

    def route(self, path: str):
        """(deployment name, rest of the path) for an HTTP path, by longest prefix."""
        best = None
        for name, entry in self.catalog.items():
            prefix = entry.get("route_prefix")
            if prefix is None:
                continue
            if path == prefix or path.startswith(prefix.rstrip("/") + "/"):
                if best is None or len(prefix) > len(best[1]):
                    best = (name, prefix)
        if best is None:
            return None
        return best[0], path[len(best[1].rstrip("/")):]

    def refresh_catalog(self) -> None:
        self._sync({}, {}, 0.0)

    def demand(self, router: Router) -> None:
        """A request waits with no replica: tell the controller now (cold start)."""
        try:
            self.controller().sync.remote(self.id, {}, {router.name: router.report()}, 0.0)
        except Exception:
            pass

    def _sync(self, known: dict, reports: dict, wait_s: float) -> dict:
        try:
            reply = rt.get(self.controller().sync.remote(self.id, known, reports, wait_s),
                           timeout=wait_s + RPC_TIMEOUT_S)
        except ActorDiedError:
            self._controller = None
            raise DeploymentError("the serve controller died") from None
        self.catalog = reply["catalog"]
        return reply

    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._loop, name="actorium-serve-router",
                                            daemon=True)
            self._thread.start()

    def _loop(self) -> None:
        while rt.current_worker() is self.worker and not self.worker._stopping:
            routers = dict(self.routers)
            busy = any(r.busy() for r in routers.values())
            known = {n: r.version for n, r in routers.items()}
            reports = {n: r.report() for n, r in routers.items()}
            try:
                reply = self._sync(known, reports, BUSY_POLL_S if busy else IDLE_POLL_S)
            except Exception:
                if rt.current_worker() is not self.worker:
                    return
                time.sleep(0.2)  # controller restarting or busy: try again shortly
                continue
            for name, table in reply["tables"].items():
                r = routers.get(name)
                if r is None:
                    continue
                if table is None:
                    r.apply({**(r.table or {}), "deleted": True, "replicas": [],
                             "sessions": {}, "pins": {}, "v": r.version})
                    self.routers.pop(name, None)
                else:
                    r.apply(table)
