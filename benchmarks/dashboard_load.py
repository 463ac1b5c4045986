#!/usr/bin/env python
"""Dashboard page load with many actors: time from navigation start until the page has
rendered the cluster's data (the page records it in ``body[data-rendered]``), measured
in headless Chromium, and the JSON snapshot's size and fetch time.

    .venv/bin/python benchmarks/dashboard_load.py [--actors 1000] [--runs 3]
"""
import argparse
import json
import os
import statistics
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests", "dashboard"))

import actorium  # noqa: E402
from actorium.core.wire import auth  # noqa: E402
from browser import DevTools  # noqa: E402


@actorium.remote(num_cpus=0)
class Idle:
    def ready(self):
        return True


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--actors", type=int, default=1000)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--json")
    args = p.parse_args()
    actorium.init(num_cpus=2)
    try:
        t0 = time.monotonic()
        actors = [Idle.options(name=f"idle-{i}").remote() for i in range(args.actors)]
        actorium.get([a.ready.remote() for a in actors], timeout=1200)
        print(f"{args.actors} actors alive in {time.monotonic() - t0:.1f}s", flush=True)
        url, token = actorium.dashboard_url(), auth.process_token().value
        req = urllib.request.Request(url + "/api/snapshot",
                                     headers={"Authorization": f"Bearer {token}"})
        fetch, size = [], 0
        for _ in range(5):
            t = time.monotonic()
            body = urllib.request.urlopen(req, timeout=30).read()
            fetch.append(time.monotonic() - t)
            size = len(body)
            time.sleep(0.6)  # past the snapshot's cache age: each fetch rebuilds it
        assert len(json.loads(body)["actors"]) >= args.actors
        rendered = []
        browser = DevTools()
        try:
            browser.call("Page.navigate", url=f"{url}/?token={token}")  # sets the cookie
            time.sleep(2)
            for _ in range(args.runs):
                # A fresh load each time; the page stamps body[data-rendered] with
                # performance.now() (ms since navigation start) when the data is drawn.
                browser.call("Page.navigate", url=f"{url}/#run-{_}")
                browser.call("Page.reload", ignoreCache=True)
                deadline = time.monotonic() + 30
                value = None
                while value is None and time.monotonic() < deadline:
                    time.sleep(0.05)
                    value = browser.evaluate(
                        "document.body && document.body.dataset.rendered && "
                        f"document.body.innerText.includes('idle-{args.actors - 1}') ? "
                        "Number(document.body.dataset.rendered) : null")
                assert value is not None, "the page did not render the actors"
                rendered.append(value / 1000.0)
        finally:
            browser.close()
        result = {"actors": args.actors, "snapshot_bytes": size,
                  "snapshot_fetch_s_median": statistics.median(fetch),
                  "page_rendered_s": rendered, "page_rendered_s_median": statistics.median(rendered)}
        print(json.dumps(result, indent=1))
        if args.json:
            with open(args.json, "w") as f:
                json.dump(result, f, indent=1)
    finally:
        actorium.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
