"""Packing by measured use (issue 9, "Packing"): how many mostly idle agent actors fit on
one node of this machine with ``resources="auto"`` versus ``num_cpus=1`` each, and the
p50 latency of a small call to them in each case (bar: >= 3x the actors, p50 within
20%).

Each mode gets a fresh ``actorium.init(num_cpus=<cores>)`` cluster with default
right-sizing knobs. Actors are created one at a time; an actor counts as fitting when
its first call answers within ``--fit-timeout`` seconds (one that does not is pending:
the node has no room left). ``--cap`` bounds the auto run. Latency: ``--calls``
sequential calls spread round-robin over all fitted actors, after a settle period so
the sampler has measured them. The machine is shared and noisy, so the two modes run
alternately ``--rounds`` times and each figure is the median over rounds.

    .venv/bin/python benchmarks/elastic_packing.py [--cap 48] [--calls 2000] [--json P]

``run()`` returns the figures as a dict, so benchmarks/elastic.py can call it.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

import actorium


class ChatAgent:
    """A stand-in LLM agent: keeps a conversation, spends microseconds per turn (the
    model call would be elsewhere), idle in between."""

    def __init__(self):
        self.turns = []

    def chat(self, text):
        self.turns.append(text)
        return len(self.turns)


def _fill(options: dict, cap: int, fit_timeout: float) -> list:
    cls = actorium.remote(**options)(ChatAgent)
    actors = []
    while len(actors) < cap:
        a = cls.remote()
        ready, _ = actorium.wait([a.chat.remote("hello")], timeout=fit_timeout)
        if not ready:
            actorium.kill(a)
            break
        actors.append(a)
    return actors


def _p50_ms(actors: list, calls: int) -> float:
    lat = []
    for i in range(calls):
        t = time.perf_counter()
        actorium.get(actors[i % len(actors)].chat.remote("hi"), timeout=30)
        lat.append((time.perf_counter() - t) * 1000)
    return statistics.median(lat)


def _mode(options: dict, cpus: int, cap: int, calls: int, fit_timeout: float,
          settle: float) -> dict:
    actorium.init(num_cpus=cpus)
    try:
        actors = _fill(options, cap, fit_timeout)
        time.sleep(settle)
        _p50_ms(actors, min(200, calls))  # warm every actor's path
        p50 = _p50_ms(actors, calls)
        avail = actorium.available_resources().get("CPU", 0.0)
        return {"actors": len(actors), "p50_ms": round(p50, 3), "cpu_available": round(avail, 3)}
    finally:
        actorium.shutdown()


def _median(runs: list) -> dict:
    return {k: statistics.median(r[k] for r in runs) for k in runs[0]}


def run(cap: int = 48, calls: int = 2000, fit_timeout: float = 2.0, settle: float = 2.0,
        rounds: int = 3) -> dict:
    cpus = os.cpu_count() or 1
    load_before = os.getloadavg()
    fixed_runs, auto_runs = [], []
    for _ in range(rounds):
        fixed_runs.append(_mode({"num_cpus": 1}, cpus, cap, calls, fit_timeout, settle))
        auto_runs.append(_mode({"resources": "auto"}, cpus, cap, calls, fit_timeout, settle))
    fixed, auto = _median(fixed_runs), _median(auto_runs)
    return {
        "machine": f"{platform.machine()} {cpus} cores, {platform.python_version()}",
        "load_before": [round(x, 2) for x in load_before],
        "load_after": [round(x, 2) for x in os.getloadavg()],
        "fixed_num_cpus_1": fixed, "auto": auto,
        "packing_ratio": round(auto["actors"] / max(1, fixed["actors"]), 2),
        "p50_ratio": round(auto["p50_ms"] / fixed["p50_ms"], 3),
        "capped": auto["actors"] >= cap, "rounds": rounds,
        "p50_ms_per_round": {"fixed": [r["p50_ms"] for r in fixed_runs],
                             "auto": [r["p50_ms"] for r in auto_runs]},
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cap", type=int, default=48, help="most auto actors to try")
    p.add_argument("--calls", type=int, default=2000)
    p.add_argument("--fit-timeout", type=float, default=2.0)
    p.add_argument("--settle", type=float, default=2.0)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--json", default="")
    a = p.parse_args()
    r = run(a.cap, a.calls, a.fit_timeout, a.settle, a.rounds)
    print(f"machine: {r['machine']}; load average before {r['load_before']}, "
          f"after {r['load_after']}")
    for name in ("fixed_num_cpus_1", "auto"):
        m = r[name]
        print(f"{name:>17}: {m['actors']:3d} actors fit, p50 call {m['p50_ms']:.3f} ms, "
              f"CPU still available {m['cpu_available']:g}")
    cap = " (hit --cap: more would fit)" if r["capped"] else ""
    print(f"packing ratio auto/fixed: {r['packing_ratio']:.1f}x{cap}  (bar >= 3x: "
          f"{'PASS' if r['packing_ratio'] >= 3 else 'FAIL'})")
    print(f"p50 ratio auto/fixed: {r['p50_ratio']:.2f}  (bar <= 1.20: "
          f"{'PASS' if r['p50_ratio'] <= 1.2 else 'FAIL'}); per round (ms): "
          f"{r['p50_ms_per_round']}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(r, f, indent=2)


if __name__ == "__main__":
    main()
