"""Elasticity and request access (issue 9): actorium deployments against Ray Serve 2.60.

    .venv/bin/python benchmarks/elastic.py                 # actorium + Ray Serve
    .venv/bin/python benchmarks/elastic.py --no-ray        # actorium only
    .venv/bin/python benchmarks/elastic.py --json out.json

Measured, with the same load generator (benchmarks/_httpload.py) against both:

- cold start: deployment at zero replicas -> first HTTP response (fresh connection), p50;
- warm HTTP latency: one client, sequential small-JSON POSTs on a keep-alive connection;
- throughput: 32 closed-loop keep-alive clients, one replica;
- router overhead: ``get(dep.handle.echo.remote(x))`` vs ``get(actor.echo.remote(x))``;
- scale-up reaction: 1 replica, max 2; from the start of an overload to the first
  response served by the second replica.

Ray Serve runs in a subprocess with the Ray interpreter (``--ray-python``, default
``/work/.venv-ray/bin/python`` or ``.venv-ray/bin/python``); it serves the same echo on
``/bench`` while this process drives the load.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _httpload import closed_loop, one_request, percentile  # noqa: E402

PAYLOAD = {"args": [{"user": "u1", "text": "hello"}]}
RAY_CANDIDATES = ["/work/.venv-ray/bin/python",
                  os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                               ".venv-ray", "bin", "python")]


class Bench:
    def echo(self, x):
        return x

    def pid(self, sleep_s: float = 0.0):
        if sleep_s:
            time.sleep(sleep_s)
        return os.getpid()


def _sequential_latency(url, path, headers, n) -> dict:
    async def run():
        from _httpload import Connection
        c = Connection(url, headers)
        raw = c.encode(path, PAYLOAD)
        lat = []
        for i in range(n + 200):
            t0 = time.perf_counter()
            status, _ = await c.request(raw)
            if i >= 200:
                lat.append(time.perf_counter() - t0)
            assert status == 200, status
        c.close()
        return {"p50_ms": percentile(lat, 50) * 1e3, "p99_ms": percentile(lat, 99) * 1e3}
    return asyncio.run(run())


def _throughput(url, path, headers, clients, seconds) -> dict:
    return asyncio.run(closed_loop(url, path, PAYLOAD, headers, clients, seconds))


# -- actorium ---------------------------------------------------------------------------
def run_actorium(args) -> dict:
    import actorium
    out: dict = {}
    actorium.init(num_cpus=2)
    try:
        headers = {"Authorization": f"Bearer {actorium.cluster_token()}"}
        dep = actorium.deploy(Bench, name="bench", route_prefix="/bench")
        url = actorium.http_url()
        out["warm_latency"] = _sequential_latency(url, "/bench/echo", headers, args.requests)
        out["throughput"] = _throughput(url, "/bench/echo", headers, 32, args.seconds)
        out["router"] = _router_overhead(actorium, dep, args.requests)
        out["cold_start"] = _cold_start(actorium, url, headers, args.cold_runs)
        out["scale_up"] = _scale_up(actorium, url, headers, args.scale_runs)
    finally:
        actorium.shutdown()
    return out


def _router_overhead(actorium, dep, n) -> dict:
    actor = actorium.remote(Bench).remote()
    actorium.get(actor.echo.remote(0))
    results = {}
    for label, call in (("direct", actor.echo), ("handle", dep.handle.echo)):
        best = float("inf")
        for _ in range(3):  # best of 3 rounds, interleaved so drift hits both
            for _ in range(200):
                actorium.get(call.remote(1))
            t0 = time.perf_counter()
            for _ in range(n):
                actorium.get(call.remote(1))
            best = min(best, (time.perf_counter() - t0) / n)
        results[f"{label}_us"] = best * 1e6
    results["ratio"] = results["handle_us"] / results["direct_us"]
    actorium.kill(actor)
    return results


def _cold_start(actorium, url, headers, runs) -> dict:
    actorium.deploy(Bench, name="cold", route_prefix="/cold", min_replicas=0,
                    max_replicas=1, idle_timeout_s=0.2)
    times = []
    for _ in range(runs):
        deadline = time.monotonic() + 30
        while actorium.deployments()["cold"]["replicas"] and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)  # let the stopped replica's process go
        dt, status = asyncio.run(one_request(url, "/cold/echo", PAYLOAD, headers))
        assert status == 200, status
        times.append(dt)
    actorium.delete_deployment("cold")
    return {"p50_ms": percentile(times, 50) * 1e3, "max_ms": max(times) * 1e3, "runs": runs}


def _scale_up(actorium, url, headers, runs) -> dict:
    """Overload a one-replica deployment (16 clients, 10 ms requests, target 2) and time
    until a response comes from a second replica."""
    times = []
    for i in range(runs):
        name = f"up{i}"
        actorium.deploy(Bench, name=name, route_prefix=f"/{name}", min_replicas=1,
                        max_replicas=2, target_ongoing_requests=2, idle_timeout_s=60)
        first = json.loads(asyncio.run(_post(url, f"/{name}/pid", headers)))
        times.append(asyncio.run(_until_new_pid(url, f"/{name}/pid", headers, first)))
        actorium.delete_deployment(name)
    return {"p50_s": percentile(times, 50), "max_s": max(times), "runs": runs}


async def _post(url, path, headers):
    from _httpload import Connection
    c = Connection(url, headers)
    status, body = await c.request(c.encode(path, {"args": [0.0]}))
    c.close()
    return body


async def _until_new_pid(url, path, headers, first_pid) -> float:
    from _httpload import Connection
    conns = [Connection(url, headers) for _ in range(16)]
    for c in conns:
        await c.open()
    raw = conns[0].encode(path, {"args": [0.01]})
    t0 = time.perf_counter()
    found = asyncio.get_running_loop().create_future()

    async def client(c):
        while not found.done() and time.perf_counter() - t0 < 30:
            status, body = await c.request(raw)
            if status == 200 and json.loads(body) != first_pid and not found.done():
                found.set_result(time.perf_counter() - t0)
    tasks = [asyncio.ensure_future(client(c)) for c in conns]
    dt = await asyncio.wait_for(found, 30)
    await asyncio.gather(*tasks)
    for c in conns:
        c.close()
    return dt


# -- Ray Serve (child process with the Ray interpreter) ----------------------------------
RAY_CHILD = r"""
import json, sys, time
import ray
from ray import serve
port = int(sys.argv[1])
ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR")
serve.start(http_options={"host": "127.0.0.1", "port": port}, logging_config={"log_level": "ERROR"})

# num_cpus=0 as actorium's actors: with Ray's default of 1 CPU per replica, the three
# deployments would not fit on 2 CPUs and the cold one could never start.
@serve.deployment(num_replicas=1, ray_actor_options={"num_cpus": 0})
class Bench:
    async def __call__(self, request):
        body = await request.json()
        return body["args"][0]

# Ray's default max_ongoing_requests (5) makes its router back off when 32 clients
# wait; the same deployment allowing 64 in flight is measured too and the better used.
@serve.deployment(num_replicas=1, max_ongoing_requests=64, ray_actor_options={"num_cpus": 0})
class Bench64:
    async def __call__(self, request):
        body = await request.json()
        return body["args"][0]

@serve.deployment(autoscaling_config={"min_replicas": 0, "max_replicas": 1,
                                      "downscale_delay_s": 1, "upscale_delay_s": 0,
                                      "initial_replicas": 0},
                  ray_actor_options={"num_cpus": 0})
class Cold:
    async def __call__(self, request):
        body = await request.json()
        return body["args"][0]

serve.run(Bench.bind(), name="bench", route_prefix="/bench")
serve.run(Bench64.bind(), name="bench64", route_prefix="/bench64")
serve.run(Cold.bind(), name="cold", route_prefix="/cold")
print("READY", flush=True)
for line in sys.stdin:
    if line.strip() == "zero":
        deadline = time.time() + 120
        while time.time() < deadline:
            st = serve.status().applications["cold"].deployments["Cold"]
            if sum(st.replica_states.values()) == 0:
                break
            time.sleep(0.1)
        time.sleep(0.3)
        print("ZERO", flush=True)
    else:
        break
serve.shutdown()
ray.shutdown()
"""


def run_ray(args, python) -> dict:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([python, "-c", RAY_CHILD, str(port)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            start_new_session=True)
    out: dict = {}
    try:
        line = proc.stdout.readline()
        if not line.startswith("READY"):
            raise RuntimeError("Ray Serve did not start")
        url = f"http://127.0.0.1:{port}"
        out["warm_latency"] = _sequential_latency(url, "/bench", {}, args.requests)
        default = _throughput(url, "/bench", {}, 32, args.seconds)
        wide = _throughput(url, "/bench64", {}, 32, args.seconds)
        out["throughput_default_max_ongoing"] = default
        out["throughput_max_ongoing_64"] = wide
        out["throughput"] = max(default, wide, key=lambda t: t["rps"])
        times = []
        for _ in range(args.ray_cold_runs):
            proc.stdin.write("zero\n")
            proc.stdin.flush()
            assert proc.stdout.readline().startswith("ZERO")
            dt, status = asyncio.run(one_request(url, "/cold", PAYLOAD, {}))
            assert status == 200, status
            times.append(dt)
        if times:
            out["cold_start"] = {"p50_ms": percentile(times, 50) * 1e3,
                                 "max_ms": max(times) * 1e3, "runs": len(times)}
    finally:
        try:
            proc.stdin.write("quit\n")
            proc.stdin.flush()
            proc.wait(60)
        except Exception:
            proc.kill()
            proc.wait(10)
        _kill_ray_session(proc.pid)
    return out


def _kill_ray_session(driver_pid: int) -> None:
    """Ray's daemons (gcs, raylet, workers) of the child's session, if any outlived it:
    found by the session directory that names the driver's pid, never by a broad name."""
    import psutil
    tag = f"_{driver_pid}"
    for p in psutil.process_iter(["cmdline"]):
        cmd = " ".join(p.info["cmdline"] or [])
        if "/tmp/ray/session_" in cmd and tag in cmd:
            for c in [p] + p.children(recursive=True):
                try:
                    c.kill()
                except psutil.Error:
                    pass


# -- report ------------------------------------------------------------------------------
def _machine() -> str:
    model = ""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{platform.system()} {platform.release()}, {os.cpu_count()} CPUs ({model}), " \
           f"Python {platform.python_version()}"


def report(a: dict, r: dict) -> None:
    print(f"machine: {_machine()}")
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    rows = [
        ("cold start from zero, p50 (ms)", a["cold_start"]["p50_ms"],
         r.get("cold_start", {}).get("p50_ms"), "<= 150", a["cold_start"]["p50_ms"] <= 150),
        ("warm HTTP latency, p50 (ms)", a["warm_latency"]["p50_ms"],
         r.get("warm_latency", {}).get("p50_ms"), "<= 3", a["warm_latency"]["p50_ms"] <= 3),
        ("throughput, 32 clients (req/s)", a["throughput"]["rps"],
         r.get("throughput", {}).get("rps"), ">= 1500", a["throughput"]["rps"] >= 1500),
        ("router: handle / direct call", a["router"]["ratio"], None, "<= 1.3",
         a["router"]["ratio"] <= 1.3),
        ("scale-up reaction, p50 (s)", a["scale_up"]["p50_s"], None, "<= 2",
         a["scale_up"]["p50_s"] <= 2),
    ]
    print(f"{'metric':<34}{'actorium':>12}{'Ray Serve':>12}{'better x':>10}  bar")
    for label, ours, theirs, bar, ok in rows:
        better = ""
        if theirs:
            better = f"{(ours / theirs if 'req/s' in label else theirs / ours):.1f}"
        print(f"{label:<34}{ours:>12.2f}{(f'{theirs:.2f}' if theirs else '-'):>12}"
              f"{better:>10}  {bar}: {'PASS' if ok else 'FAIL'}")
    print(f"  router: direct {a['router']['direct_us']:.0f} us, handle "
          f"{a['router']['handle_us']:.0f} us per sequential call")
    print(f"  throughput errors: {a['throughput']['errors']}; p99 at 32 clients "
          f"{a['throughput']['p99_ms']:.1f} ms")
    if r.get("throughput"):
        print(f"  Ray Serve throughput: {r['throughput_default_max_ongoing']['rps']:.0f} req/s "
              f"with its default max_ongoing_requests=5, "
              f"{r['throughput_max_ongoing_64']['rps']:.0f} with 64 (the better is compared)")
        ratio = a["throughput"]["rps"] / r["throughput"]["rps"]
        print(f"  throughput vs Ray Serve: {ratio:.1f}x (goal >= 3x: "
              f"{'PASS' if ratio >= 3 else 'FAIL'})")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--no-ray", action="store_true", help="skip the Ray Serve comparison")
    p.add_argument("--ray-python", default=next((c for c in RAY_CANDIDATES
                                                 if os.path.exists(c)), RAY_CANDIDATES[-1]))
    p.add_argument("--seconds", type=float, default=5.0, help="throughput measurement")
    p.add_argument("--requests", type=int, default=2000, help="sequential requests")
    p.add_argument("--cold-runs", type=int, default=9)
    p.add_argument("--ray-cold-runs", type=int, default=3)
    p.add_argument("--scale-runs", type=int, default=3)
    p.add_argument("--json", default=None, help="write the raw figures here")
    args = p.parse_args(argv)
    ray: dict = {}
    if not args.no_ray:
        if os.path.exists(args.ray_python):
            ray = run_ray(args, args.ray_python)  # never both at once on 2 cores
        else:
            print(f"(no Ray interpreter at {args.ray_python}: skipping Ray Serve)")
    ours = run_actorium(args)
    report(ours, ray)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"actorium": ours, "ray_serve": ray, "machine": _machine(),
                       "loadavg": os.getloadavg()}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
