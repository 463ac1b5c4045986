#!/usr/bin/env python
"""Durable sessions (issue 5): journal and checkpoint overheads on one node.

    .venv/bin/python benchmarks/durable.py [--steps 2000] [--duration 3] [--json out.json]

Measures, on a single node (num_cpus=2):
  * a journaled no-op step, ``durable.step("noop", noop)``, timed inside an actor method
    (intent written and fsync'd, fn run, result committed and fsync'd: two round trips
    to the gcs), ``--steps`` steps one after another: p50 / p99 / mean. Bar: p50 <= 1 ms;
  * journaled steps per second with 8 actors stepping at once (the gcs's durable
    service commits concurrent requests in one fsync'd transaction);
  * the sequential call rate (call + get) of an actor holding ~100 KiB of state (a list
    of 1000 strings of 100 bytes; each call replaces one) with ``checkpoint="auto"`` (a
    snapshot fsync'd after every call) and without checkpoints. Bar: >= 0.5x;
  * the same with 100 calls in flight (submit 100, get them; repeat), where the
    checkpoint writer commits many calls' snapshot and replies in one fsync;
  * for reference, the same actor as a session (checkpoint plus request/result events).

With ``--cluster`` it measures instead, on a Cluster of real node processes (head + one
node, the node holding the gcs's durable standby):
  * the journaled no-op step with replication: each intent and commit is fsync'd by the
    gcs AND by the standby on the other node before the step goes on. Bar: p50 <= 3 ms;
  * ``--kills`` times: a session on a fresh node is cut off mid-request by SIGKILL of
    that node; seconds from the kill to the request's answer (the session woken on
    another node from checkpoint + journal). Bar: median <= 3 s (default detection:
    heartbeats every 0.25 s, dead after 1.5 s).
"""
import argparse
import json
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

import actorium  # noqa: E402
from actorium import durable  # noqa: E402


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, int(round(q / 100 * (len(xs) - 1)))))]


def noop():
    return None


@actorium.remote(max_restarts=-1, checkpoint="auto")
class Stepper:
    def steps(self, n):
        out = []
        for _ in range(n):
            t = time.perf_counter()
            durable.step("noop", noop)
            out.append(time.perf_counter() - t)
        return out

    def plain(self, n):
        out = []
        for _ in range(n):
            t = time.perf_counter()
            noop()
            out.append(time.perf_counter() - t)
        return out


def concurrent_steps(actors: int, steps: int) -> float:
    """Journaled steps per second, cluster-wide, with ``actors`` actors stepping at once."""
    group = [Stepper.remote() for _ in range(actors)]
    actorium.get([a.steps.remote(10) for a in group])  # warm: all actors up
    t0 = time.perf_counter()
    actorium.get([a.steps.remote(steps) for a in group], timeout=600)
    return actors * steps / (time.perf_counter() - t0)


class State:
    def __init__(self):
        self.items = [os.urandom(50).hex() for _ in range(1000)]  # ~100 KiB pickled
        self.i = 0

    def touch(self):
        self.items[self.i % 1000] = os.urandom(50).hex()
        self.i += 1
        return self.i


def call_rate(handle, duration):
    actorium.get(handle.touch.remote())  # warm: the actor is up
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < duration:
        actorium.get(handle.touch.remote())
        n += 1
    return n / (time.perf_counter() - t0)


def pipelined_rate(handle, duration, window=100):
    """Calls in flight at once (as Ray's "1:1 actor calls async"): ``window`` at a time."""
    actorium.get(handle.touch.remote())
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < duration:
        actorium.get([handle.touch.remote() for _ in range(window)])
        n += window
    return n / (time.perf_counter() - t0)


def state_size() -> int:
    import cloudpickle
    return len(cloudpickle.dumps(State().__dict__))


def cluster_main(args):
    import tempfile
    sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests", "durable"))
    import cloudpickle
    import durable_cluster as dc
    from actorium.cluster_utils import Cluster
    from actorium.util.scheduling_strategies import NodeAffinitySchedulingStrategy
    cloudpickle.register_pickle_by_value(dc)
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    tmp = tempfile.mkdtemp(prefix="durable-bench-")
    try:
        c.add_node(num_cpus=1)
        actorium.init(address=c.address)
        s = Stepper.options(num_cpus=0, scheduling_strategy=NodeAffinitySchedulingStrategy(
            c.head_node.node_id, soft=False)).remote()
        actorium.get(s.steps.remote(50), timeout=60)  # warm-up; the standby is attached
        lat = actorium.get(s.steps.remote(args.steps), timeout=600)
        with open(os.path.join(c.session_dir, "logs", "gcs.log")) as f:
            replicated = "durable store replicated to node" in f.read()
        kills = []
        for i in range(args.kills):
            victim = c.add_node(num_cpus=1)
            cls = actorium.remote(dc.Agent).options(
                num_cpus=0, scheduling_strategy=NodeAffinitySchedulingStrategy(
                    victim.node_id, soft=True))
            sess = actorium.session(f"bench-kill-{i}", cls, f"k{i}", os.path.join(tmp, "b"))
            hold = os.path.join(tmp, f"hold{i}")
            ref = sess.handle.remote(hold)
            while not os.path.exists(hold):
                time.sleep(0.005)
            t = time.monotonic()
            c.remove_node(victim, allow_graceful=False)
            actorium.get(ref, timeout=60)
            kills.append(time.monotonic() - t)
            print(f"  kill {i + 1}: {kills[-1]:.2f} s", flush=True)
    finally:
        actorium.shutdown()
        c.shutdown()
    p50 = pct(lat, 50) * 1e3
    med = statistics.median(kills) if kills else float("nan")
    rows = [
        ("journaled no-op step, replicated, p50", f"{p50:.3f} ms",
         f"bar <= 3 ms: {'PASS' if p50 <= 3 else 'FAIL'}"
         + ("" if replicated else " (NO STANDBY ATTACHED)")),
        ("journaled no-op step, replicated, p99", f"{pct(lat, 99) * 1e3:.3f} ms", ""),
        (f"node kill -> session answers, median of {len(kills)}", f"{med:.2f} s",
         f"bar <= 3 s: {'PASS' if med <= 3 else 'FAIL'}; "
         f"min {min(kills):.2f} max {max(kills):.2f}" if kills else ""),
    ]
    width = max(len(r[0]) for r in rows)
    for name, value, note in rows:
        print(f"{name:<{width}}  {value:>12}  {note}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"replicated_step_latencies_s": lat, "node_kill_to_answer_s": kills}, f)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--duration", type=float, default=3.0)
    ap.add_argument("--json", default="")
    ap.add_argument("--cluster", action="store_true",
                    help="replicated steps and node-kill recovery on a Cluster")
    ap.add_argument("--kills", type=int, default=7)
    args = ap.parse_args()
    if args.cluster:
        return cluster_main(args)
    actorium.init(num_cpus=2)
    try:
        s = Stepper.remote()
        actorium.get(s.steps.remote(50))  # warm-up
        lat = actorium.get(s.steps.remote(args.steps), timeout=600)
        base = actorium.get(s.plain.remote(args.steps))
        concurrent = concurrent_steps(8, args.steps // 4)
        plain = actorium.remote(num_cpus=0, max_restarts=-1)(State).remote()
        ckpt = actorium.remote(num_cpus=0, max_restarts=-1, checkpoint="auto")(State).remote()
        sess = actorium.session("bench-session", State)
        rate_plain = call_rate(plain, args.duration)
        rate_ckpt = call_rate(ckpt, args.duration)
        rate_sess = call_rate(sess, args.duration)
        pipe_plain = pipelined_rate(plain, args.duration)
        pipe_ckpt = pipelined_rate(ckpt, args.duration)
    finally:
        actorium.shutdown()
    p50 = pct(lat, 50) * 1e3
    rows = [
        ("journaled no-op step p50", f"{p50:.3f} ms", f"bar <= 1 ms: {'PASS' if p50 <= 1 else 'FAIL'}"),
        ("journaled no-op step p99", f"{pct(lat, 99) * 1e3:.3f} ms", ""),
        ("journaled no-op step mean", f"{statistics.mean(lat) * 1e3:.3f} ms", ""),
        ("no-op without journal p50", f"{pct(base, 50) * 1e6:.2f} us", ""),
        ("journaled steps/s, 8 actors at once", f"{concurrent:.0f} steps/s",
         f"1 actor: {1 / statistics.mean(lat):.0f} steps/s"),
        (f"actor calls, {state_size() // 1024} KiB state, no checkpoint",
         f"{rate_plain:.0f} calls/s", ""),
        ("same, checkpoint='auto'", f"{rate_ckpt:.0f} calls/s",
         f"{rate_ckpt / rate_plain:.2f}x, bar >= 0.5x: "
         f"{'PASS' if rate_ckpt >= 0.5 * rate_plain else 'FAIL'}"),
        ("same, as a session (checkpoint + events)", f"{rate_sess:.0f} calls/s",
         f"{rate_sess / rate_plain:.2f}x"),
        ("100 calls in flight, no checkpoint", f"{pipe_plain:.0f} calls/s", ""),
        ("100 calls in flight, checkpoint='auto'", f"{pipe_ckpt:.0f} calls/s",
         f"{pipe_ckpt / pipe_plain:.2f}x, bar >= 0.5x: "
         f"{'PASS' if pipe_ckpt >= 0.5 * pipe_plain else 'FAIL'}"),
    ]
    width = max(len(r[0]) for r in rows)
    for name, value, note in rows:
        print(f"{name:<{width}}  {value:>16}  {note}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"step_latencies_s": lat, "concurrent_steps_per_s": concurrent, "rate_plain": rate_plain,
                       "rate_checkpoint": rate_ckpt, "rate_session": rate_sess,
                       "pipelined_plain": pipe_plain, "pipelined_checkpoint": pipe_ckpt}, f)


if __name__ == "__main__":
    main()
