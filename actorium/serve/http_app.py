"""The HTTP edge as a Starlette app: ``POST {route_prefix}/{method}`` -> a routed call.

Thin on purpose: it authenticates, parses, and forwards through the same router a
Python caller uses, in the ingress's process. Statuses: 200 result; 400 bad JSON or
arguments; 401 no or wrong bearer token; 404 unknown route or method; 405 not POST;
413 body over the cap; 429 queue full (Retry-After); 500 the method raised
(``{"error": type, "message": ...}``, never a traceback); 503 no replica in time.
A generator method asked with ``Accept: text/event-stream`` streams one SSE ``data:``
event per item as it is produced; the client going away cancels the generator.
"""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import json

from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from actorium.exceptions import (BackPressureError, DeploymentError, GetTimeoutError,
                                 TaskError)
from actorium.serve import _runtime as rt
from actorium.serve.client import client
from actorium.serve.handle import open_durable_session_async

MAX_BODY_BYTES = 10 * 1024 * 1024
RETRY_AFTER_S = 1


def _error(status: int, kind: str, message: str, headers=None) -> JSONResponse:
    return JSONResponse({"error": kind, "message": message}, status_code=status,
                        headers=headers)


def _exception_body(exc: BaseException) -> tuple[str, str]:
    """(type name, message) of an error from a replica, without the traceback."""
    if isinstance(exc, TaskError):
        cause = exc.cause
        if cause is not None:
            return type(cause).__name__, str(cause)
        return exc.cause_class or "Error", ""
    return type(exc).__name__, str(exc).splitlines()[0] if str(exc) else ""


class Edge:
    """The request handler; one per ingress process."""

    def __init__(self, cluster_token: str, max_body: int = MAX_BODY_BYTES):
        self._token_digest = hashlib.sha256(cluster_token.encode()).digest()
        self.max_body = max_body
        self._refreshing: asyncio.Future | None = None

    def _authorized(self, request: Request, key_digests) -> bool:
        header = request.headers.get("authorization", "")
        scheme, _, presented = header.partition(" ")
        if scheme.lower() != "bearer" or not presented:
            return False
        digest = hashlib.sha256(presented.strip().encode()).digest()
        ok = hmac.compare_digest(digest, self._token_digest)
        for d in key_digests:  # every key is compared: the time does not tell which
            ok = hmac.compare_digest(digest, d) | ok
        return ok

    async def _route(self, path: str):
        c = client()
        found = c.route(path)
        if found is None:
            # A deployment made a moment ago may not be in the catalog yet: ask. One
            # refresh at a time, shared by every request that misses meanwhile, so
            # requests for unknown paths cannot make the ingress hammer the controller.
            if self._refreshing is None or self._refreshing.done():
                self._refreshing = asyncio.ensure_future(
                    asyncio.get_running_loop().run_in_executor(None, c.refresh_catalog))
            await asyncio.shield(self._refreshing)
            found = c.route(path)
        return found

    async def _router(self, name: str):
        c = client()
        r = c.routers.get(name)
        if r is not None and r.table is not None:
            return r
        return await asyncio.get_running_loop().run_in_executor(None, c.router, name)

    async def handle(self, request: Request) -> Response:
        if request.method != "POST":
            return _error(405, "MethodNotAllowed", "use POST")
        found = await self._route(request.url.path)
        if found is None:
            if not self._authorized(request, ()):
                return _error(401, "Unauthorized", "a valid bearer token is required")
            return _error(404, "NotFound", f"no deployment serves {request.url.path}")
        name, rest = found
        try:
            router = await self._router(name)
        except DeploymentError:
            return _error(404, "NotFound", f"no deployment serves {request.url.path}")
        table = router.table
        if not self._authorized(request, table["config"]["api_key_digests"]):
            return _error(401, "Unauthorized", "a valid bearer token is required")
        method = rest.strip("/")
        if not method or "/" in method or method not in table["methods"]:
            return _error(404, "NotFound", f"deployment {name!r} has no method {method!r}")
        body = await self._body(request)
        if isinstance(body, Response):
            return body
        args, kwargs = body
        sig = table["signatures"].get(method)
        if sig is not None:
            try:
                sig.bind(*args, **kwargs)
            except TypeError as exc:
                return _error(400, "BadRequest", f"{method}(): {exc}")
        return await self._call(request, router, method, args, kwargs)

    async def _body(self, request: Request):
        length = request.headers.get("content-length")
        if length is not None:
            if not length.isdigit():
                return _error(400, "BadRequest", "bad Content-Length")
            if int(length) > self.max_body:
                return _error(413, "PayloadTooLarge", f"the body exceeds {self.max_body} bytes")
        chunks, size = [], 0
        try:
            async for chunk in request.stream():
                size += len(chunk)
                if size > self.max_body:
                    return _error(413, "PayloadTooLarge",
                                  f"the body exceeds {self.max_body} bytes")
                chunks.append(chunk)
        except ClientDisconnect:
            return Response(status_code=400)
        raw = b"".join(chunks)
        if not raw.strip():
            return (), {}
        try:
            doc = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            return _error(400, "BadRequest", f"the body is not valid JSON: {exc}")
        if not isinstance(doc, dict) or set(doc) - {"args", "kwargs"}:
            return _error(400, "BadRequest",
                          'the body must be a JSON object {"args": [...], "kwargs": {...}}')
        args, kwargs = doc.get("args", []), doc.get("kwargs", {})
        if not isinstance(args, list) or not isinstance(kwargs, dict):
            return _error(400, "BadRequest", '"args" must be a list and "kwargs" an object')
        return tuple(args), kwargs

    async def _call(self, request: Request, router, method: str, args, kwargs) -> Response:
        session = request.headers.get("x-session-id") or None
        try:
            if session is not None and router.durable():
                chosen = await open_durable_session_async(router, session)
            else:
                chosen = await router.acquire_async(session)
        except BackPressureError as exc:
            return _error(429, "TooManyRequests", str(exc),
                          headers={"Retry-After": str(RETRY_AFTER_S)})
        except GetTimeoutError as exc:
            return _error(503, "Unavailable", str(exc),
                          headers={"Retry-After": str(RETRY_AFTER_S)})
        except DeploymentError as exc:
            return _error(503, "Unavailable", str(exc))
        out = router.send(chosen, method, args, kwargs)
        if isinstance(out, rt.ObjectRefGenerator):
            if "text/event-stream" in request.headers.get("accept", ""):
                return StreamingResponse(_sse(out), media_type="text/event-stream",
                                         headers={"Cache-Control": "no-cache"})
            try:
                items = [item async for item in _refs(out)]
                return _json_result(items)
            except Exception as exc:
                return _error(500, *_exception_body(exc))
        try:
            value = await out
        except Exception as exc:
            return _error(500, *_exception_body(exc))
        return _json_result(value)


def _json_result(value) -> Response:
    try:
        body = json.dumps(value, separators=(",", ":")).encode()
    except (TypeError, ValueError) as exc:
        return _error(500, "TypeError", f"the result is not JSON-serializable: {exc}")
    return Response(body, media_type="application/json")


async def _refs(gen):
    async for ref in gen:
        yield await ref


async def _sse(gen):
    """SSE events from a streaming call; cancels it if the client goes away first."""
    finished = False
    try:
        async for ref in gen:
            try:
                item = await ref
            except Exception as exc:
                yield _error_event(*_exception_body(exc))
                finished = True
                return
            try:
                data = json.dumps(item)
            except (TypeError, ValueError) as exc:
                yield _error_event("TypeError", f"an item is not JSON-serializable: {exc}")
                return  # finished stays False: the generator is cancelled
            yield f"data: {data}\n\n"
        finished = True
    finally:
        if not finished:
            try:
                rt.cancel(gen)
            except Exception:
                pass


def _error_event(kind: str, message: str) -> str:
    return f"event: error\ndata: {json.dumps({'error': kind, 'message': message})}\n\n"


def build_app(edge: Edge) -> Starlette:
    return Starlette(routes=[Route("/{path:path}", edge.handle, methods=["GET", "POST", "PUT",
                                                                  "DELETE", "PATCH"])])
