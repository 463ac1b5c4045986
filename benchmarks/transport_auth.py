#!/usr/bin/env python
"""Raw cost of authenticated TCP: 100 MiB through a ROUTER/DEALER pair in two processes,
over plain TCP and over CURVE as ``actorium.core.wire.transport`` sets it up (keys derived
from a token, ZAP guard, MAXMSGSIZE), for several message sizes.

    .venv/bin/python benchmarks/transport_auth.py [--total-mib 100] [--trials 3]

Prints one row per message size: best-of-trials throughput in GB/s (1e9 B/s) plain and
with CURVE, and their ratio; then the rate of sequential 100-byte request/reply round
trips (the control-plane cost: a driver's calls to the gcs). Both sockets live in separate processes, each with its own
ZeroMQ I/O thread, as two nodes would.
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

TOKEN = "benchmark-token-" + "0" * 48


import zmq  # noqa: E402

from actorium.core.wire import auth, transport  # noqa: E402

_SECURE = transport.secure


def _socket_pair_side(secure: bool):
    """Set up this process's transport: the real ``secure``, or none at all (the plain
    baseline: the same sockets and options without authentication)."""
    auth.set_process_token(auth.Token(TOKEN, "benchmark"))
    transport.secure = _SECURE if secure else (lambda sock, addr, server: sock)


def _echo_server(secure: bool, port_queue) -> None:
    _socket_pair_side(secure)
    router = transport.bind_router("tcp://127.0.0.1:*")
    port_queue.put(int(router.getsockopt(zmq.LAST_ENDPOINT).decode().rsplit(":", 1)[1]))
    while True:
        identity, data = router.recv_multipart()
        router.send_multipart([identity, data])
        if data == b"stop":
            break
    router.close(0)


def round_trips(secure: bool, count: int, trials: int) -> float:
    """Best rate (per second) of ``count`` sequential 100-byte request/replies."""
    ctx = mp.get_context("spawn")
    ports = ctx.Queue()
    server = ctx.Process(target=_echo_server, args=(secure, ports))
    server.start()
    try:
        port = ports.get(timeout=30)
        _socket_pair_side(secure)
        dealer = transport.connect_dealer(f"tcp://127.0.0.1:{port}")
        payload = b"x" * 100
        dealer.send(payload)
        dealer.recv()
        best = float("inf")
        for _ in range(trials):
            start = time.perf_counter()
            for _ in range(count):
                dealer.send(payload)
                dealer.recv()
            best = min(best, time.perf_counter() - start)
        dealer.send(b"stop")
        dealer.recv()
        dealer.close(0)
        return count / best
    finally:
        server.join(30)
        if server.is_alive():
            server.kill()


def _server(secure: bool, port_queue, count: int, trials: int) -> None:
    _socket_pair_side(secure)
    router = transport.bind_router("tcp://127.0.0.1:*")
    port_queue.put(int(router.getsockopt(zmq.LAST_ENDPOINT).decode().rsplit(":", 1)[1]))
    identity, _ = router.recv_multipart()
    for _ in range(trials):
        for _ in range(count):
            router.recv_multipart(copy=False)
        router.send_multipart([identity, b"done"])
    router.close(0)


def run(secure: bool, total: int, chunk: int, trials: int) -> float:
    """Best throughput in GB/s of ``trials`` transfers of ``total`` bytes."""
    count = max(1, total // chunk)
    ctx = mp.get_context("spawn")  # never fork a process that runs ZeroMQ threads
    ports = ctx.Queue()
    server = ctx.Process(target=_server, args=(secure, ports, count, trials))
    server.start()
    try:
        port = ports.get(timeout=30)
        _socket_pair_side(secure)
        dealer = transport.connect_dealer(f"tcp://127.0.0.1:{port}")
        dealer.send(b"hello")
        payload = os.urandom(chunk)
        best = float("inf")
        for _ in range(trials):
            start = time.perf_counter()
            for _ in range(count):
                dealer.send(payload, copy=False)
            dealer.recv()
            best = min(best, time.perf_counter() - start)
        dealer.close(0)
        return count * chunk / best / 1e9
    finally:
        server.join(30)
        if server.is_alive():
            server.kill()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--total-mib", type=int, default=100)
    p.add_argument("--trials", type=int, default=3)
    args = p.parse_args()
    total = args.total_mib << 20
    print(f"{args.total_mib} MiB per transfer, best of {args.trials}, 2 processes, loopback; "
          f"loadavg {os.getloadavg()[0]:.2f}")
    print(f"{'message size':>14}  {'plain GB/s':>10}  {'CURVE GB/s':>10}  {'ratio':>6}")
    for chunk in (total, 8 << 20, 1 << 20, 256 << 10, 64 << 10):
        plain = run(False, total, chunk, args.trials)
        curve = run(True, total, chunk, args.trials)
        label = f"{chunk >> 20} MiB" if chunk >= 1 << 20 else f"{chunk >> 10} KiB"
        print(f"{label:>14}  {plain:>10.2f}  {curve:>10.2f}  {curve / plain:>6.2f}", flush=True)
    plain = round_trips(False, 5000, args.trials)
    curve = round_trips(True, 5000, args.trials)
    print(f"100-byte round trips/s: plain {plain:,.0f}  CURVE {curve:,.0f}  "
          f"ratio {curve / plain:.2f}")


if __name__ == "__main__":
    main()
