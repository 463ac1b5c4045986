#!/usr/bin/env python
"""Sandbox latency and throughput (issue 4), against a plain task in the same run.

Executes jails, so run it inside the containment script (as root, as CI does):

    RUN_CMD="$PWD/.venv/bin/python benchmarks/sandbox.py" tests/isolation/run_contained.sh
    ... benchmarks/sandbox.py --runs 200 --inflight 8 --json out.json

Measures, on a warm single node (num_cpus=2):
  * start-to-result latency of ``actorium.get(actorium.sandbox.run("1+1"))``, one at a
    time, ``--runs`` times (p50 / p99 / mean / max);
  * throughput with ``--inflight`` sandboxes in flight at once (fresh jail each);
  * the same two for a sandboxed function (``isolation="sandbox"``, fresh jail per
    call), a call on a sandboxed actor (one resident jail) and a plain
    ``@actorium.remote`` task returning ``1+1``;
  * ``--idle-actors N`` (default 200): unique memory (USS) that N idle sandboxed actors
    add to the node's process tree (worker + jail handler + keeper + jail each), per actor;
and prints a table with the ratios to the plain task.
"""
import argparse
import json
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

import psutil  # noqa: E402

import actorium  # noqa: E402


class Tool:
    """An idle sandboxed tool: what an agent keeps around between model turns."""

    def __init__(self):
        self.calls = 0

    def ping(self):
        self.calls += 1
        return 1 + 1


def tree_uss() -> tuple[float, int]:
    """(MiB of unique memory, process count) of this process's descendants."""
    total, n = 0, 0
    for p in psutil.Process().children(recursive=True):
        try:
            total += p.memory_full_info().uss
            n += 1
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return total / 2 ** 20, n


def idle_actors(count: int) -> dict:
    Sandboxed = actorium.remote(isolation="sandbox", num_cpus=0)(Tool)
    before, procs_before = tree_uss()
    t = time.perf_counter()
    actors = [Sandboxed.remote() for _ in range(count)]
    assert actorium.get([a.ping.remote() for a in actors], timeout=600) == [2] * count
    elapsed = time.perf_counter() - t
    time.sleep(1.0)  # let page-cache and allocator settle before measuring
    after, procs_after = tree_uss()
    for a in actors:
        actorium.kill(a)
    return {"actors": count, "uss_per_actor_mib": (after - before) / count,
            "processes_per_actor": (procs_after - procs_before) / count,
            "create_and_first_call_s": elapsed, "tree_uss_mib": after}


def pct(xs, q):
    xs = sorted(xs)
    k = min(len(xs) - 1, max(0, int(round(q / 100 * (len(xs) - 1)))))
    return xs[k]


def latency(submit, runs):
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        actorium.get(submit())
        out.append(time.perf_counter() - t)
    return out


def throughput(submit, total, inflight):
    t = time.perf_counter()
    pending = [submit() for _ in range(min(inflight, total))]
    submitted = len(pending)
    done = 0
    while pending:
        ready, pending = actorium.wait(pending, num_returns=1)
        actorium.get(ready)
        done += len(ready)
        while submitted < total and len(pending) < inflight:
            pending.append(submit())
            submitted += 1
    return done / (time.perf_counter() - t)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--inflight", type=int, default=8)
    ap.add_argument("--throughput-total", type=int, default=400)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--idle-actors", type=int, default=200)
    ap.add_argument("--json", default="")
    args = ap.parse_args()
    if os.getpid() != 1:
        print("note: not pid 1 of a private pid namespace; run inside "
              "tests/isolation/run_contained.sh (RUN_CMD=...)", file=sys.stderr)

    actorium.init(num_cpus=2)

    @actorium.remote
    def plain():
        return 1 + 1

    @actorium.remote(isolation="sandbox")
    def sandboxed():
        return 1 + 1

    def sandbox():
        return actorium.sandbox.run("1+1")

    results = {}
    idle = None
    try:
        r = actorium.get(sandbox())
        assert r.value == 2 and r.exit_code == 0, r
        actor = actorium.remote(isolation="sandbox")(Tool).remote()
        workloads = (("sandbox.run('1+1')", sandbox), ("sandboxed function", sandboxed.remote),
                     ("sandboxed actor call", actor.ping.remote), ("plain task", plain.remote))
        for name, submit in workloads:
            latency(submit, args.warmup)
            lat = latency(submit, args.runs)
            tput = throughput(submit, args.throughput_total, args.inflight)
            results[name] = {
                "p50_ms": pct(lat, 50) * 1e3, "p99_ms": pct(lat, 99) * 1e3,
                "mean_ms": statistics.fmean(lat) * 1e3, "max_ms": max(lat) * 1e3,
                "throughput_per_s": tput, "runs": args.runs, "inflight": args.inflight}
        actorium.kill(actor)
        if args.idle_actors:
            idle = idle_actors(args.idle_actors)
    finally:
        actorium.shutdown()

    s, p = results["sandbox.run('1+1')"], results["plain task"]
    print(f"\n{'workload':<22}{'p50 ms':>9}{'p99 ms':>9}{'mean ms':>9}{'max ms':>9}"
          f"{'per s (' + str(args.inflight) + ' in flight)':>24}")
    for name, r in results.items():
        print(f"{name:<22}{r['p50_ms']:>9.2f}{r['p99_ms']:>9.2f}{r['mean_ms']:>9.2f}"
              f"{r['max_ms']:>9.2f}{r['throughput_per_s']:>24.1f}")
    for name in ("sandbox.run('1+1')", "sandboxed function", "sandboxed actor call"):
        r = results[name]
        print(f"{'ratio ' + name[:11] + '/task':<22}{r['p50_ms'] / p['p50_ms']:>9.1f}"
              f"{r['p99_ms'] / p['p99_ms']:>9.1f}{r['mean_ms'] / p['mean_ms']:>9.1f}{'':>9}"
              f"{p['throughput_per_s'] / r['throughput_per_s']:>23.1f}x")
    if idle:
        print(f"\n{idle['actors']} idle sandboxed actors: {idle['uss_per_actor_mib']:.2f} MiB USS "
              f"each ({idle['processes_per_actor']:.1f} processes each), created and first "
              f"call answered in {idle['create_and_first_call_s']:.1f} s; node tree USS "
              f"{idle['tree_uss_mib']:.0f} MiB (bar: < 15 MiB each: "
              f"{'ok' if idle['uss_per_actor_mib'] < 15 else 'MISSED'})")
    print(f"\nissue 4 bars: p50 <= 15 ms ({'ok' if s['p50_ms'] <= 15 else 'MISSED'}), "
          f"p99 <= 50 ms ({'ok' if s['p99_ms'] <= 50 else 'MISSED'}), "
          f">= 50 sandboxes/s ({'ok' if s['throughput_per_s'] >= 50 else 'MISSED'})")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"results": results, "idle_actors": idle, "cpus": os.cpu_count()},
                      f, indent=2)


if __name__ == "__main__":
    main()
