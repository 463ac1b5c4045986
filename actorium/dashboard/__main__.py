"""The dashboard process: ``python -m actorium.dashboard --gcs ADDR --session-dir DIR
--port N --token-fd FD [--watch-pid PID]``.

Started by ``actorium start --head --dashboard-port N`` or on a driver's first
``actorium.dashboard_url()``; it prints one ``READY {json}`` line with its URL, serves
until SIGTERM, and exits by itself once ``--watch-pid`` (the head node) is gone.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading

from actorium.core.wire import auth, transport
from actorium.dashboard.collector import Collector
from actorium.dashboard.launch import process_alive
from actorium.dashboard.server import DashboardServer

WATCH_PERIOD = 0.5


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m actorium.dashboard")
    p.add_argument("--gcs", required=True)
    p.add_argument("--session-dir", required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--token-fd", type=int, required=True)
    p.add_argument("--watch-pid", type=int, default=0)
    args = p.parse_args(argv)
    auth.adopt_token_fd(args.token_fd)
    token = auth.process_token().value
    transport.context()
    server = DashboardServer(args.host, args.port, token, Collector(args.gcs, args.session_dir))
    host, port = server.server_address[:2]
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    if args.watch_pid:
        threading.Thread(target=_watch, args=(args.watch_pid, stop), daemon=True).start()
    print("READY " + json.dumps({"url": f"http://{host}:{port}", "pid": os.getpid()}),
          flush=True)
    server.timeout = 0.25
    try:
        while not stop.is_set():
            server.handle_request()
    finally:
        server.server_close()
        transport.close_thread_sockets()
    return 0


def _watch(pid: int, stop: threading.Event) -> None:
    while not stop.wait(WATCH_PERIOD):
        if not process_alive(pid):
            stop.set()


if __name__ == "__main__":
    sys.exit(main())
