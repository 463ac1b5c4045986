"""Workload definitions for benchmarks/microbenchmark.py.

Names, remote definitions and batch sizes follow Ray 2.60's
``python/ray/_private/ray_perf.py`` (the ``ray microbenchmark`` command).
Every workload is ``fn(bench) -> (value, unit, higher_is_better)`` where
``bench`` is a :class:`Bench`: ``bench.ray`` is the backend module
(``actorium`` or ``ray``), ``bench.r`` the remote functions/classes built for
it, and ``bench.rate`` / ``bench.latency_ms`` the timed loops.

Only the Ray-compatible public API is used by the workloads themselves:
``init, remote, get, put, wait, shutdown, .options``, actor classes and async
actors.  Remote definitions live in a closure (:func:`build`) so that they are
pickled by value and workers never need to import this file.
"""

import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from types import SimpleNamespace

import numpy as np

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NUM_CPUS = 2  # init(num_cpus=2) for both backends
# ray_perf uses multiprocessing.cpu_count() // 2 actors for the 1:n / n:n
# workloads; with num_cpus=2 (and on this 2-core machine) that is 1.
N_CPU = max(1, NUM_CPUS // 2)
MIB = 1024 * 1024


def build(ray):
    """Create the remote functions/classes of ray_perf.py for backend ``ray``."""

    @ray.remote
    def small_value():
        return b"ok"

    @ray.remote(num_cpus=0)
    class Actor:
        def small_value(self):
            return b"ok"

        def small_value_arg(self, x):
            return b"ok"

        def small_value_batch(self, n):
            ray.get([small_value.remote() for _ in range(n)])

    @ray.remote
    class AsyncActor:
        async def small_value(self):
            return b"ok"

        async def small_value_with_arg(self, x):
            return b"ok"

    @ray.remote(num_cpus=0)
    class Client:
        def __init__(self, servers):
            if not isinstance(servers, list):
                servers = [servers]
            self.servers = servers

        def small_value_batch(self, n):
            results = []
            for s in self.servers:
                results.extend([s.small_value.remote() for _ in range(n)])
            ray.get(results)

    @ray.remote
    def work(actors, n):
        ray.get([actors[i % len(actors)].small_value.remote() for i in range(n)])

    return SimpleNamespace(small_value=small_value, Actor=Actor,
                           AsyncActor=AsyncActor, Client=Client, work=work)


@dataclass
class Bench:
    """Timing context handed to every workload."""

    ray: object                     # the backend module
    duration: float = 2.0           # seconds per timed trial
    trials: int = 3
    warmup: float = 1.0             # seconds of un-timed warm-up calls
    scale: float = 1.0              # multiplies batch sizes (1.0 = ray_perf)
    startup_runs: int = 3
    r: SimpleNamespace = None       # remotes from build(), set once init()ed
    last_trials: list = field(default_factory=list)
    details: dict = None            # optional extra info from a workload

    def n(self, size):
        """A ray_perf batch size scaled by --scale (at least 1)."""
        return max(1, int(size * self.scale))

    def _loop(self, fn):
        # Same shape as ray_microbenchmark_helpers.timeit: ~1 s warm-up to
        # pick a step, then `trials` loops of `duration` seconds.
        start, count = time.perf_counter(), 0
        while time.perf_counter() - start < self.warmup or count == 0:
            fn()
            count += 1
        step = count // 10 + 1
        out = []
        for _ in range(self.trials):
            start, count = time.perf_counter(), 0
            while time.perf_counter() - start < self.duration:
                for _ in range(step):
                    fn()
                count += step
            out.append((count, time.perf_counter() - start))
        return out

    def rate(self, fn, multiplier=1, unit="/s"):
        """Median over trials of multiplier * calls / second."""
        self.last_trials = [multiplier * c / t for c, t in self._loop(fn)]
        return statistics.median(self.last_trials), unit, True

    def latency_ms(self, fn):
        """Median over trials of milliseconds per call."""
        self.last_trials = [1000.0 * t / c for c, t in self._loop(fn)]
        return statistics.median(self.last_trials), "ms", False


REGISTRY = {}  # name -> (fn, needs_cluster)


def workload(name, needs_cluster=True):
    def deco(fn):
        REGISTRY[name] = (fn, needs_cluster)
        return fn
    return deco


# --------------------------------------------------------------- object store
@workload("single client get calls (Plasma Store)")
def get_small(b):
    """get() of one small object (put(0)) from the driver, calls/s."""
    value = b.ray.put(0)
    return b.rate(lambda: b.ray.get(value))


@workload("single client put calls (Plasma Store)")
def put_small(b):
    """put(0) from the driver, calls/s."""
    return b.rate(lambda: b.ray.put(0))


@workload("single client put gigabytes")
def put_large(b):
    """put() of an 800 MiB int64 zero array (ray_perf's shape), GB/s (0.8 GB per put)."""
    arr = np.zeros(100 * MIB, dtype=np.int64)
    return b.rate(lambda: b.ray.put(arr), multiplier=8 * 0.1, unit="GB/s")


@workload("get 100 MiB numpy array")
def get_100mib(b):
    """get() of an already-put 100 MiB int64 array, ms per get (zero-copy ~ const)."""
    arr = np.ones(100 * MIB // 8, dtype=np.int64)
    ref = b.ray.put(arr)
    got = b.ray.get(ref)
    assert got.shape == arr.shape and got[-1] == 1
    del got
    return b.latency_ms(lambda: b.ray.get(ref))


@workload("copy 100 MiB numpy array", needs_cluster=False)
def copy_100mib(b):
    """Baseline, no backend involved: arr.copy() of a 100 MiB array, ms per copy."""
    arr = np.ones(100 * MIB // 8, dtype=np.int64)
    return b.latency_ms(arr.copy)


# ---------------------------------------------------------------------- tasks
@workload("single client tasks sync")
def tasks_sync(b):
    """get(small_value.remote()) one at a time, tasks/s."""
    f = b.r.small_value
    return b.rate(lambda: b.ray.get(f.remote()))


@workload("single client tasks async")
def tasks_async(b):
    """Submit 1000 small tasks, then get() them all, tasks/s."""
    f, n = b.r.small_value, b.n(1000)
    return b.rate(lambda: b.ray.get([f.remote() for _ in range(n)]), n)


@workload("multi client tasks async")
def multi_client_tasks(b):
    """4 actors each submit 10000 small tasks and get() them, tasks/s overall."""
    n, m = b.n(10000), 4
    actors = [b.r.Actor.remote() for _ in range(m)]
    return b.rate(lambda: b.ray.get([a.small_value_batch.remote(n) for a in actors]),
                  n * m)


@workload("single client wait 1k refs")
def wait_1k(b):
    """Submit 1000 small tasks, then wait() with num_returns=1 until all ready, rounds/s."""
    f, n = b.r.small_value, b.n(1000)

    def wait_multiple_refs():
        not_ready = [f.remote() for _ in range(n)]
        for _ in range(n):
            _ready, not_ready = b.ray.wait(not_ready)
    return b.rate(wait_multiple_refs)


# --------------------------------------------------------------------- actors
@workload("1:1 actor calls sync")
def actor_sync(b):
    """get(a.small_value.remote()) one at a time on a sync actor, calls/s."""
    a = b.r.Actor.remote()
    return b.rate(lambda: b.ray.get(a.small_value.remote()))


@workload("1:1 actor calls async")
def actor_async(b):
    """1000 calls submitted to one sync actor, then get() all, calls/s."""
    a, n = b.r.Actor.remote(), b.n(1000)
    return b.rate(lambda: b.ray.get([a.small_value.remote() for _ in range(n)]), n)


@workload("1:1 actor calls concurrent")
def actor_concurrent(b):
    """As 1:1 async but the actor has .options(max_concurrency=16), calls/s."""
    a, n = b.r.Actor.options(max_concurrency=16).remote(), b.n(1000)
    return b.rate(lambda: b.ray.get([a.small_value.remote() for _ in range(n)]), n)


@workload("1:n actor calls async")
def actor_1_n(b):
    """One Client actor calls N_CPU server actors 5000 times each, calls/s."""
    n = b.n(5000)
    client = b.r.Client.remote([b.r.Actor.remote() for _ in range(N_CPU)])
    return b.rate(lambda: b.ray.get(client.small_value_batch.remote(n)), n * N_CPU)


@workload("n:n actor calls async")
def actor_n_n(b):
    """4 tasks each make 5000 calls spread over N_CPU actors, calls/s."""
    n, m = b.n(5000), 4
    actors = [b.r.Actor.remote() for _ in range(N_CPU)]
    return b.rate(lambda: b.ray.get([b.r.work.remote(actors, n) for _ in range(m)]),
                  m * n)


@workload("1:1 async-actor calls sync")
def async_actor_sync(b):
    """get(a.small_value.remote()) one at a time on an async actor, calls/s."""
    a = b.r.AsyncActor.remote()
    return b.rate(lambda: b.ray.get(a.small_value.remote()))


@workload("1:1 async-actor calls async")
def async_actor_async(b):
    """1000 calls submitted to one async actor, then get() all, calls/s."""
    a, n = b.r.AsyncActor.remote(), b.n(1000)
    return b.rate(lambda: b.ray.get([a.small_value.remote() for _ in range(n)]), n)


@workload("1:n async-actor calls async")
def async_actor_1_n(b):
    """One Client actor calls N_CPU async actors 5000 times each, calls/s."""
    n = b.n(5000)
    client = b.r.Client.remote([b.r.AsyncActor.remote() for _ in range(N_CPU)])
    return b.rate(lambda: b.ray.get(client.small_value_batch.remote(n)), n * N_CPU)


@workload("actor create + first call")
def actor_create(b):
    """Create 10 actors, get() one call on each, drop the handles; actors/s."""
    n = b.n(10)

    def create():
        actors = [b.r.Actor.remote() for _ in range(n)]
        b.ray.get([a.small_value.remote() for a in actors])
    return b.rate(create, n, unit="actors/s")


# ------------------------------------------------- fresh-subprocess workloads
_STARTUP_CHILD = """
import time, json
t0 = time.perf_counter()
import {backend} as ray
t1 = time.perf_counter()
ray.init(num_cpus={num_cpus})
t2 = time.perf_counter()
@ray.remote
def f():
    return 1
assert ray.get(f.remote()) == 1
t3 = time.perf_counter()
print("BENCH_JSON " + json.dumps(dict(total=t3 - t0, import_s=t1 - t0,
      init_s=t2 - t1, first_task_s=t3 - t2)), flush=True)
ray.shutdown()
"""

_MEMORY_CHILD = """
import json, os, re, time
import psutil
import {backend} as ray
ray.init(num_cpus={num_cpus})
@ray.remote
def f():
    return 1
assert ray.get(f.remote()) == 1
time.sleep({settle})  # let prestarted workers / daemons finish starting
me = psutil.Process()
procs = {{p.pid: p for p in me.children(recursive=True)}}
# Session dir: Ray's private handle if present, else any --session(-_)dir arg.
session = None
try:
    session = ray._private.worker._global_node.get_session_dir_path()
except Exception:
    for p in procs.values():
        try:
            m = re.search(r"session[-_]dir[= ](\\S+)", " ".join(p.cmdline()))
        except psutil.Error:
            continue
        if m:
            session = m.group(1)
            break
via_session = 0
if session:
    for p in psutil.process_iter(["cmdline"]):
        if p.pid != me.pid and p.pid not in procs and \\
                session in " ".join(p.info["cmdline"] or []):
            procs[p.pid] = p
            via_session += 1
rows = []
for p in procs.values():
    try:
        name = p.name()
        if name.startswith("python"):  # name by script: log_monitor.py, ...
            name = next((os.path.basename(a) for a in p.cmdline()[1:]
                         if a.endswith(".py")), name)
        rows.append((name, p.memory_full_info().pss / 2**20))
    except psutil.Error:
        pass
print("BENCH_JSON " + json.dumps(dict(
    pss_mib=sum(r[1] for r in rows), n_procs=len(rows), via_session=via_session,
    session_dir=session, driver_pss_mib=me.memory_full_info().pss / 2**20,
    procs=sorted(rows, key=lambda r: -r[1]))), flush=True)
ray.shutdown()
"""


def run_child(code, timeout=300):
    """Run ``code`` in a fresh interpreter; return the dict it prints as BENCH_JSON."""
    env = dict(os.environ)
    env["PYTHONPATH"] = REPO_ROOT + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True,
                          text=True, timeout=timeout, env=env, cwd=REPO_ROOT)
    for line in proc.stdout.splitlines():
        if line.startswith("BENCH_JSON "):
            return json.loads(line[len("BENCH_JSON "):])
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
    raise RuntimeError(f"child exited {proc.returncode}: {' | '.join(tail)}")


@workload("startup", needs_cluster=False)
def startup(b):
    """Fresh interpreter: import backend + init(num_cpus=2) + first task result.

    Median seconds over --startup-runs runs (interpreter start-up and
    shutdown() excluded).
    """
    code = _STARTUP_CHILD.format(backend=b.ray.__name__, num_cpus=NUM_CPUS)
    runs = [run_child(code) for _ in range(b.startup_runs)]
    b.last_trials = [r["total"] for r in runs]
    b.details = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    b.details["note"] = ("import {import_s:.2f} + init {init_s:.2f} + first task "
                         "{first_task_s:.3f} s".format(**b.details))
    return statistics.median(b.last_trials), "s", False


@workload("memory PSS of cluster processes", needs_cluster=False)
def memory_pss(b):
    """Fresh driver: init(num_cpus=2) + one task, sleep 1 s, then sum PSS (MiB).

    Processes counted: all descendants of the driver plus any process whose
    command line contains the session dir; the driver itself is EXCLUDED
    (its PSS is reported in the details).
    """
    code = _MEMORY_CHILD.format(backend=b.ray.__name__, num_cpus=NUM_CPUS, settle=1.0)
    res = run_child(code)
    b.last_trials = [res["pss_mib"]]
    b.details = res
    b.details["note"] = (f"{res['n_procs']} procs, driver excluded "
                         f"(driver {res['driver_pss_mib']:.0f} MiB)")
    return res["pss_mib"], "MiB", False
