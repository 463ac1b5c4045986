#!/usr/bin/env python
"""Ray-style microbenchmark for actorium, runnable against Ray itself.

Workload names, shapes and batch sizes follow ``ray microbenchmark``
(ray/_private/ray_perf.py); the workloads live in ``_workloads.py``.

    .venv/bin/python benchmarks/microbenchmark.py                 # actorium
    .venv-ray/bin/python benchmarks/microbenchmark.py --backend ray
    .venv/bin/python benchmarks/microbenchmark.py --compare-ray   # both, one table
    ... --filter "actor calls" --duration 2 --trials 3 --json out.json

Each workload runs a 1 s warm-up, then ``--trials`` timed loops of
``--duration`` seconds; the median is reported with the trial spread.
A workload that fails prints ``ERROR: ...`` in its row (the cluster is then
restarted for the next one); every backend is shut down at the end.
With ``--emit-json`` all human output goes to stderr and only the JSON result
is written to stdout (used by ``--compare-ray`` for the Ray subprocess).
"""

import argparse
import datetime
import importlib
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from _workloads import NUM_CPUS, REGISTRY, REPO_ROOT, Bench, build  # noqa: E402

sys.path.insert(1, REPO_ROOT)  # `import actorium` without installing it
DEFAULT_RAY_PYTHON = os.path.join(REPO_ROOT, ".venv-ray", "bin", "python")
# Issue bars on the literal actorium/ray value ratio (lower is better).
RAW_BARS = {"startup": 0.15, "memory PSS of cluster processes": 0.3}


def log(*a):
    print(*a, file=sys.stderr, flush=True)


class WorkloadTimeout(Exception):
    pass


class time_limit:
    """Raise WorkloadTimeout in the main thread after `seconds` (SIGALRM)."""

    def __init__(self, seconds):
        self.seconds = seconds

    def _fire(self, signum, frame):
        raise WorkloadTimeout(f"timed out after {self.seconds:.0f} s")

    def __enter__(self):
        self.old = signal.signal(signal.SIGALRM, self._fire)
        signal.setitimer(signal.ITIMER_REAL, self.seconds)

    def __exit__(self, *exc):
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, self.old)


def machine_info():
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(ln.split(":", 1)[1].strip() for ln in f
                       if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
            "cpu": cpu, "cores": os.cpu_count(),
            "python": platform.python_version(), "loadavg": os.getloadavg()}


def select(filt):
    return [n for n in REGISTRY if not filt or filt.lower() in n.lower()]


def _error_row(exc):
    msg = f"{type(exc).__name__}: {exc}".splitlines()[0][:200]
    return {"error": msg}


def _init(backend, address=None):
    if address:
        backend.init(address=address)
    else:
        backend.init(num_cpus=NUM_CPUS)


def run_backend(args):
    """Run the selected workloads against args.backend; return a result dict."""
    names = select(args.filter)
    out = {"backend": args.backend, "version": None, "machine": machine_info(),
           "init": (f"init(address={args.address!r})" if args.address
                    else f"init(num_cpus={NUM_CPUS})"), "settings": {
               "duration": args.duration, "trials": args.trials,
               "scale": args.scale, "startup_runs": args.startup_runs},
           "results": {}}
    try:
        backend = importlib.import_module(args.backend)
        out["version"] = getattr(backend, "__version__", "unknown")
    except Exception as exc:  # noqa: BLE001 - report, don't crash
        for n in names:
            out["results"][n] = _error_row(exc)
        return out
    bench = Bench(backend, duration=args.duration, trials=args.trials,
                  scale=args.scale, startup_runs=args.startup_runs)
    log(f"== backend {args.backend} {out['version']}: {len(names)} workloads")
    # Fresh-subprocess / backend-free workloads first, while no cluster runs.
    ordered = ([n for n in names if not REGISTRY[n][1]]
               + [n for n in names if REGISTRY[n][1]])
    running = False
    try:
        for name in ordered:
            fn, needs_cluster = REGISTRY[name]
            bench.last_trials, bench.details = [], None
            t0 = time.perf_counter()
            try:
                with time_limit(args.timeout):
                    if needs_cluster and not running:
                        _init(backend, args.address)
                        running = True
                        bench.r = build(backend)
                    if args.sleep:
                        time.sleep(args.sleep)
                    value, unit, hib = fn(bench)
                row = {"value": value, "unit": unit, "higher_is_better": hib,
                       "trials": bench.last_trials}
                if bench.details:
                    row["details"] = bench.details
            except (Exception, WorkloadTimeout) as exc:  # noqa: BLE001
                row = _error_row(exc)
                if args.verbose:
                    traceback.print_exc()
                if running:  # start the next workload on a fresh cluster
                    running = not _shutdown(backend, args.timeout)
            row["seconds"] = round(time.perf_counter() - t0, 1)
            out["results"][name] = row
            log(f"  {name}: {fmt_row(row)}  [{row['seconds']} s]")
    finally:
        if running:
            _shutdown(backend, args.timeout)
    out["machine"]["loadavg_end"] = os.getloadavg()
    out["results"] = {n: out["results"][n] for n in names}  # registry order
    return out


def _shutdown(backend, timeout):
    try:
        with time_limit(timeout):
            backend.shutdown()
        return True
    except (Exception, WorkloadTimeout) as exc:  # noqa: BLE001
        log(f"  shutdown failed: {exc}")
        return False


def fmt(v):
    if v is None:
        return "-"
    if abs(v) >= 100:
        return f"{v:,.0f}"
    return f"{v:.3g}" if abs(v) < 1 else f"{v:.2f}"


def spread(row):
    """(max - min) / median of the trials, in percent."""
    t = row.get("trials") or []
    if len(t) < 2 or not statistics.median(t):
        return ""
    return f"±{100 * (max(t) - min(t)) / statistics.median(t) / 2:.0f}%"


def fmt_row(row):
    if "error" in row:
        return "ERROR: " + row["error"]
    return f"{fmt(row['value'])} {row['unit']} {spread(row)} {note(row)}".rstrip()


def note(row):
    return (row.get("details") or {}).get("note", "")


def header(res):
    m = res["machine"]
    return (f"# backend: {res['backend']} {res['version']}; {res['init']}"
            " (no include_dashboard arg, like ray_perf's plain ray.init())\n"
            f"# {m['date']}, {m['cpu']}, {m['cores']} cores, Python {m['python']}; "
            f"loadavg start {m['loadavg'][0]:.2f} end "
            f"{m.get('loadavg_end', [float('nan')])[0]:.2f}\n"
            f"# median of {res['settings']['trials']} trials x "
            f"{res['settings']['duration']} s (±: half the min-max spread); "
            f"batch scale {res['settings']['scale']}; memory excludes the driver")


def print_single(res):
    print(header(res))
    w = max(len(n) for n in res["results"]) if res["results"] else 10
    print(f"{'workload':<{w}}  {'value':>12}  unit")
    for name, row in res["results"].items():
        if "error" in row:
            print(f"{name:<{w}}  ERROR: {row['error']}")
        else:
            print(f"{name:<{w}}  {fmt(row['value']):>12}  {row['unit']:<8} "
                  f"{spread(row):>5}  {note(row)}".rstrip())


def compare(act, ray):
    """Merge two result dicts; ratio 'better' is always how many times better actorium is."""
    rows = {}
    for name in list(act["results"]) + [n for n in ray["results"] if n not in act["results"]]:
        a, r = act["results"].get(name, {}), ray["results"].get(name, {})
        row = {"actorium": a, "ray": r, "better": None, "raw": None}
        av, rv = a.get("value"), r.get("value")
        if av is not None and rv:
            row["raw"] = av / rv
            hib = a.get("higher_is_better", r.get("higher_is_better", True))
            row["better"] = row["raw"] if hib else (rv / av if av else None)
            if name in RAW_BARS:
                ok = row["raw"] <= RAW_BARS[name]
                row["bar"] = f"bar <= {RAW_BARS[name]}: {'PASS' if ok else 'FAIL'}"
        rows[name] = row
    return rows


def print_compare(act, ray, rows):
    print(header(act))
    print(header(ray))
    w = max(len(n) for n in rows) if rows else 10
    print(f"{'workload':<{w}}  {'actorium':>12}  {'ray':>12}  {'unit':<8}  "
          f"{'better x':>8}  {'actorium/ray raw':>16}")

    def cell(x):
        return "ERROR" if "error" in x else fmt(x.get("value"))
    for name, row in rows.items():
        a, r = row["actorium"], row["ray"]
        unit = a.get("unit") or r.get("unit") or ""
        raw = f"{row['raw']:.3g}" if row["raw"] is not None else "-"
        better = f"{row['better']:.3g}" if row["better"] is not None else "-"
        print(f"{name:<{w}}  {cell(a):>12}  {cell(r):>12}  {unit:<8}  "
              f"{better:>8}  {raw:>16}  {row.get('bar', '')}".rstrip())
    for side, res in (("actorium", act), ("ray", ray)):
        for name, row in res["results"].items():
            if "error" in row:
                print(f"# {side} ERROR in {name}: {row['error']}")


def run_ray_subprocess(args):
    py = args.ray_python
    if not os.path.exists(py):
        raise FileNotFoundError(f"{py} missing: run bash benchmarks/setup_ray_venv.sh")
    cmd = [py, os.path.abspath(__file__), "--backend", "ray", "--emit-json",
           "--duration", str(args.duration), "--trials", str(args.trials),
           "--scale", str(args.scale), "--timeout", str(args.timeout),
           "--startup-runs", str(args.startup_runs), "--sleep", str(args.sleep)]
    if args.filter:
        cmd += ["--filter", args.filter]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, cwd=REPO_ROOT)
    if proc.returncode != 0 or not proc.stdout.strip():
        raise RuntimeError(f"ray subprocess exited {proc.returncode}")
    return json.loads(proc.stdout)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backend", default="actorium", choices=["actorium", "ray"])
    p.add_argument("--compare-ray", action="store_true",
                   help="run ray (subprocess, --ray-python) and actorium; one table")
    p.add_argument("--ray-python", default=DEFAULT_RAY_PYTHON)
    p.add_argument("--filter", default="", help="only workloads containing this")
    p.add_argument("--address", default=None,
                   help="connect to a running cluster (host:port, e.g. one started with "
                        "'actorium start --head --num-cpus 2') instead of starting one")
    p.add_argument("--duration", type=float, default=2.0, help="seconds per trial")
    p.add_argument("--trials", type=int, default=3)
    p.add_argument("--scale", type=float, default=1.0,
                   help="multiply ray_perf's batch sizes (e.g. 0.1 for a quick run)")
    p.add_argument("--startup-runs", type=int, default=3)
    p.add_argument("--sleep", type=float, default=0.0,
                   help="idle seconds before each workload (ray_perf uses 10)")
    p.add_argument("--timeout", type=float, default=300.0,
                   help="seconds per workload before it is reported as ERROR")
    p.add_argument("--json", metavar="PATH", help="write the results as JSON")
    p.add_argument("--emit-json", action="store_true",
                   help="print only JSON on stdout (human output to stderr)")
    p.add_argument("--list", action="store_true", help="list workload names")
    p.add_argument("-v", "--verbose", action="store_true", help="print tracebacks")
    args = p.parse_args(argv)

    if args.list:
        print("\n".join(select(args.filter)))
        return 0
    json_fd = None
    if args.emit_json:  # keep stdout clean of anything the backend prints
        sys.stdout.flush()
        json_fd = os.dup(1)
        os.dup2(2, 1)

    if args.compare_ray:
        args.backend = "actorium"
        try:
            ray_res = run_ray_subprocess(args)
        except Exception as exc:  # noqa: BLE001
            log(f"ray run failed: {exc}")
            ray_res = {"backend": "ray", "version": None, "machine": machine_info(),
                       "init": "-", "settings": {"trials": args.trials,
                       "duration": args.duration, "scale": args.scale},
                       "results": {n: {"error": str(exc)} for n in select(args.filter)}}
        act_res = run_backend(args)
        rows = compare(act_res, ray_res)
        result = {"actorium": act_res, "ray": ray_res, "comparison": rows}
        print_compare(act_res, ray_res, rows)
    else:
        result = run_backend(args)
        print_single(result)  # on stderr when --emit-json
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
    if json_fd is not None:
        with os.fdopen(json_fd, "w") as f:
            json.dump(result, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
