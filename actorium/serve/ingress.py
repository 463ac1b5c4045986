"""The HTTP ingress: a detached actor on the head node running uvicorn on its own
event loop, so a request is parsed, routed and answered in one process, and reaches a
replica over the same direct actor-call path as a Python caller (no extra hop).

``ensure_ingress`` starts it on first use (``http_url()`` or ``deploy(route_prefix=)``)
or for ``actorium start --head --http-port N``; it then lives as long as the cluster.
"""
from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import os
import sys

from actorium.serve import _runtime as rt
from actorium.serve.names import NAMESPACE

NAME = "actorium-serve-ingress"
START_TIMEOUT_S = 30.0


class HttpIngress:
    def __init__(self):
        self.url = ""
        self._server = None
        self._task = None
        self._starting = asyncio.Lock()  # concurrent start()s: one server, one bind
        if rt.restarted():
            # Our process died (a head restart): serve again where we served before.
            from actorium.serve import persistence
            where = persistence.load_ingress()
            if where:
                asyncio.get_running_loop().create_task(
                    self._restart(where["host"], where["port"]))

    async def start(self, host: str, port: int) -> str:
        """Serve on ``host``:``port`` (0: a free port) unless serving already; the URL.
        Also brings the route catalog up to date, so a deployment made just before is
        served from the moment ``deploy()`` returns."""
        async with self._starting:
            if self.url:
                from actorium.serve.client import client
                await asyncio.get_running_loop().run_in_executor(None,
                                                                 client().refresh_catalog)
                return self.url
            return await self._listen(host, port)

    async def _listen(self, host: str, port: int) -> str:
        import uvicorn

        from actorium.serve.http_app import Edge, build_app

        class _Server(uvicorn.Server):
            # The actor's loop thread is not the process's main thread, and the
            # process's signals belong to the worker: uvicorn must not take them.
            @contextlib.contextmanager
            def capture_signals(self):
                yield

        max_body = int(os.environ.get("ACTORIUM_HTTP_MAX_BODY_BYTES", 0) or 0) or None
        edge = Edge(rt.process_token().value, **({"max_body": max_body} if max_body else {}))
        # No access log: request lines are noise at this rate, and headers (tokens)
        # must never reach a log.
        config = uvicorn.Config(build_app(edge), host=host, port=port, log_level="warning",
                                access_log=False, lifespan="off", http="httptools",
                                timeout_keep_alive=30)
        self._server = _Server(config)
        self._task = asyncio.get_running_loop().create_task(_serve(self._server))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + START_TIMEOUT_S
        while not self._server.started:
            if self._task.done():
                exc = self._task.exception()
                raise RuntimeError(f"the HTTP ingress could not listen on {host}:{port}: "
                                   f"{exc or 'uvicorn exited'}")
            if loop.time() > deadline:
                raise TimeoutError("the HTTP ingress did not start")
            await asyncio.sleep(0.005)
        bound = self._server.servers[0].sockets[0].getsockname()[1]
        shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
        self.url = f"http://{shown}:{bound}"
        from actorium.serve import persistence
        persistence.save_ingress(host, bound)  # a restarted controller restarts us here
        return self.url

    async def _restart(self, host: str, port: int) -> None:
        try:
            await self.start(host, port)
        except Exception as exc:  # the log says why; a later start() may still succeed
            print(f"actorium serve: the HTTP ingress could not listen on {host}:{port} "
                  f"again: {exc}", file=sys.stderr)

    async def address(self) -> str:
        return self.url


async def _serve(server) -> None:
    """uvicorn exits the process (SystemExit) when it cannot bind: in an actor that
    must be an error of the start, not the end of the worker."""
    try:
        await server.serve()
    except SystemExit:
        raise RuntimeError("uvicorn could not start (address in use?)") from None


def ensure_ingress(host: str = "127.0.0.1", port: int = 0, timeout: float = 60.0) -> str:
    """Start the cluster's ingress on the head node if needed; its base URL. A running
    ingress keeps its address (``host``/``port`` apply to the first start only)."""
    missing = [m for m in ("uvicorn", "starlette") if importlib.util.find_spec(m) is None]
    if missing:
        raise RuntimeError(f"the HTTP ingress needs {' and '.join(missing)}: install the "
                           f"serve extra, pip install 'actorium[serve]'")
    head = next((n["NodeID"] for n in rt.nodes() if n.get("IsHead") and n.get("Alive")), None)
    opts = dict(name=NAME, namespace=NAMESPACE, lifetime="detached", get_if_exists=True,
                max_concurrency=100000, max_restarts=-1)
    if head is not None:
        opts["scheduling_strategy"] = rt.NodeAffinitySchedulingStrategy(head, soft=True)
    handle = rt.remote(HttpIngress).options(**opts).remote()
    return rt.get(handle.start.remote(host, port), timeout=timeout)
