"""The dashboard's HTTP server: the page, its JSON API and ``/metrics``, all behind the
cluster token.

A request is let in with ``Authorization: Bearer <cluster token>`` (scrapers, scripts)
or with the session cookie that a visit to any page with ``?token=<cluster token>`` sets
(people); the cookie holds an HMAC of the token, never the token itself, and the visit
is redirected to the same page without the token in its address. Everything else gets
401, static files included. Nothing is logged per request, so no token reaches a log.

One thread serves everything (the JSON is rebuilt from the gcs at most twice a second
and shared by every poller); each connection gets a socket timeout, so a stalled
client cannot hold the server for long.
"""
from __future__ import annotations

import hashlib
import hmac
import http.server
import json
import os
import urllib.parse

from actorium.dashboard import prometheus
from actorium.dashboard.collector import Collector

STATIC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")
COOKIE = "actorium_dashboard"
FILES = {"/": ("index.html", "text/html; charset=utf-8"),
         "/app.js": ("app.js", "text/javascript; charset=utf-8"),
         "/style.css": ("style.css", "text/css; charset=utf-8")}
CLIENT_TIMEOUT = 5.0


def cookie_value(token: str) -> str:
    return hmac.new(token.encode(), b"actorium dashboard cookie v1", hashlib.sha256).hexdigest()


class Handler(http.server.BaseHTTPRequestHandler):
    server_version = "actorium-dashboard"
    timeout = CLIENT_TIMEOUT

    def log_message(self, format, *args) -> None:  # noqa: A002 - the base class's name
        pass  # request lines carry ?token=...: never logged

    # -- auth -------------------------------------------------------------------------
    def _authorized(self) -> bool:
        token = self.server.token
        header = self.headers.get("Authorization", "")
        if header.startswith("Bearer ") and hmac.compare_digest(
                header[7:].strip().encode(), token.encode()):
            return True
        for part in self.headers.get("Cookie", "").split(";"):
            name, _, value = part.strip().partition("=")
            if name == COOKIE and hmac.compare_digest(value.encode(), self.server.cookie.encode()):
                return True
        return False

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        url = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(url.query)
        given = query.pop("token", [None])[0]
        if given is not None:
            if not hmac.compare_digest(given.encode(), self.server.token.encode()):
                return self._send(401, b"wrong token\n", "text/plain")
            rest = urllib.parse.urlencode(query, doseq=True)
            self.send_response(303)
            self.send_header("Set-Cookie", f"{COOKIE}={self.server.cookie}; HttpOnly; "
                                           f"SameSite=Strict; Path=/")
            self.send_header("Location", url.path + (f"?{rest}" if rest else ""))
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if not self._authorized():
            return self._send(401, b"the cluster token is required: open this page with "
                              b"?token=<cluster token>, or send Authorization: Bearer <token>\n",
                              "text/plain", {"WWW-Authenticate": 'Bearer realm="actorium"'})
        try:
            self._route(url.path, {k: v[0] for k, v in query.items()})
        except (LookupError, ValueError) as exc:
            self._send(404, json.dumps({"error": str(exc)}).encode(), "application/json")
        except Exception as exc:  # the cluster did not answer: say so, keep serving
            self._send(503, json.dumps({"error": f"{type(exc).__name__}: {exc}"}).encode(),
                       "application/json")

    def _route(self, path: str, q: dict) -> None:
        c: Collector = self.server.collector
        if path in FILES:
            name, ctype = FILES[path]
            with open(os.path.join(STATIC, name), "rb") as f:
                return self._send(200, f.read(), ctype)
        if path == "/metrics":
            c.refresh()
            return self._send(200, prometheus.render(c.metrics), prometheus.CONTENT_TYPE)
        if path == "/api/snapshot":
            c.refresh()
            return self._send(200, c.body, "application/json")
        if path == "/api/logs":
            value = c.read_log(q["node"], q.get("file", "*"), int(q.get("offset", -200)),
                               int(q.get("length", 0)), q.get("task", ""))
            return self._send(200, json.dumps(value).encode(), "application/json")
        if path == "/api/events":
            value = c.events(q["key"], int(q.get("start", 0)))
            return self._send(200, json.dumps(value).encode(), "application/json")
        raise LookupError(f"no such page: {path}")

    def _send(self, status: int, body: bytes, ctype: str, headers: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)


class DashboardServer(http.server.HTTPServer):
    def __init__(self, host: str, port: int, token: str, collector: Collector):
        super().__init__((host, port), Handler)
        self.token = token
        self.cookie = cookie_value(token)
        self.collector = collector
