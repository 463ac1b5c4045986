"""A small closed-loop HTTP/1.1 load generator: asyncio streams, keep-alive connections,
responses parsed by httptools (the parser uvicorn uses), so the client costs little CPU
next to the server it measures on the same 2 cores. Used by benchmarks/elastic.py."""
from __future__ import annotations

import asyncio
import json
import time
from urllib.parse import urlsplit

import httptools

TIMEOUT_S = 60.0  # no request of a benchmark waits longer than this


class _Response:
    def __init__(self):
        self.body = bytearray()
        self.done = False

    def on_body(self, data: bytes) -> None:
        self.body += data

    def on_message_complete(self) -> None:
        self.done = True


class Connection:
    """One keep-alive connection; ``request`` sends one POST and waits for its reply."""

    def __init__(self, url: str, headers: dict):
        u = urlsplit(url)
        self.host, self.port = u.hostname, u.port
        self.headers = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self.reader = self.writer = None

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.wait_for(
            asyncio.open_connection(self.host, self.port), TIMEOUT_S)

    def encode(self, path: str, payload) -> bytes:
        body = json.dumps(payload).encode()
        return (f"POST {path} HTTP/1.1\r\nHost: {self.host}\r\n{self.headers}"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
                ).encode() + body

    async def request(self, raw: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            await self.open()
        self.writer.write(raw)
        resp = _Response()
        parser = httptools.HttpResponseParser(resp)
        deadline = time.monotonic() + TIMEOUT_S
        while not resp.done:
            data = await asyncio.wait_for(self.reader.read(65536),
                                          max(0.001, deadline - time.monotonic()))
            if not data:
                raise ConnectionError("the server closed the connection")
            parser.feed_data(data)
        return parser.get_status_code(), bytes(resp.body)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


async def closed_loop(url: str, path: str, payload, headers: dict, clients: int,
                      seconds: float, warmup: float = 1.0) -> dict:
    """``clients`` connections each sending requests back to back for ``warmup`` +
    ``seconds``; counts and latencies of the measured part only."""
    conns = [Connection(url, headers) for _ in range(clients)]
    for c in conns:
        await c.open()
    raw = conns[0].encode(path, payload)
    lat: list[float] = []
    errors = 0
    start = time.perf_counter()
    measure_from = start + warmup
    end = measure_from + seconds

    async def run(c: Connection):
        nonlocal errors
        while True:
            t0 = time.perf_counter()
            if t0 >= end:
                return
            status, _ = await c.request(raw)
            t1 = time.perf_counter()
            if t0 >= measure_from:
                lat.append(t1 - t0)
                if status != 200:
                    errors += 1
    await asyncio.gather(*(run(c) for c in conns))
    for c in conns:
        c.close()
    return {"requests": len(lat), "errors": errors, "rps": len(lat) / seconds,
            "p50_ms": percentile(lat, 50) * 1e3, "p99_ms": percentile(lat, 99) * 1e3}


async def one_request(url: str, path: str, payload, headers: dict) -> tuple[float, int]:
    """A fresh connection and one request: (seconds, status)."""
    c = Connection(url, headers)
    t0 = time.perf_counter()
    await c.open()
    status, _ = await c.request(c.encode(path, payload))
    dt = time.perf_counter() - t0
    c.close()
    return dt, status


def percentile(values, pct: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(round(pct / 100 * (len(s) - 1))))]
