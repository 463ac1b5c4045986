#!/usr/bin/env python
"""What metrics and logging cost on the per-call path: the microbenchmark's
tasks-async and actor-calls rows with counting off (ACTORIUM_METRICS=0) and on,
alternated in one run so both see the same machine load.

    .venv/bin/python benchmarks/metrics_overhead.py [--rounds 4] [--json out.json]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROWS = ["single client tasks async", "1:1 actor calls async"]


def one(row: str, enabled: bool, duration: float) -> float:
    env = dict(os.environ, ACTORIUM_METRICS="1" if enabled else "0")
    out = subprocess.run([sys.executable, os.path.join(HERE, "microbenchmark.py"), "--filter",
                          row, "--duration", str(duration), "--trials", "3", "--emit-json"],
                         env=env, capture_output=True, text=True, timeout=600)
    result = json.loads(out.stdout)["results"]
    return result[row]["value"]  # the median of the trials


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--duration", type=float, default=2.0)
    p.add_argument("--json")
    args = p.parse_args()
    report = {}
    for row in ROWS:
        off, on = [], []
        for _ in range(args.rounds):  # alternate, so drift in machine load hits both
            off.append(one(row, False, args.duration))
            on.append(one(row, True, args.duration))
        m_off, m_on = statistics.median(off), statistics.median(on)
        report[row] = {"off": off, "on": on, "median_off": m_off, "median_on": m_on,
                       "overhead_pct": 100.0 * (m_off - m_on) / m_off}
        print(f"{row:32s} off {m_off:10.0f}/s  on {m_on:10.0f}/s  "
              f"cost {report[row]['overhead_pct']:+.1f}%", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
