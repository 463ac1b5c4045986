"""A Ray Core script, unchanged except for its first import line.

    python examples/ray_compat.py

Everything below is written against Ray's API; ``import actorium as ray`` is the whole
migration for code like this. See the migration table in README.md for what differs.
"""
import asyncio

import actorium as ray  # was: import ray

ray.init(num_cpus=2)


def fib(n: int) -> int:
    return n if n < 2 else fib(n - 1) + fib(n - 2)


@ray.remote
def fib_task(n: int) -> int:
    return fib(n)


@ray.remote(max_retries=0)
def fails():
    raise ValueError("bad input")


@ray.remote
class KeyValue:
    def __init__(self):
        self.data = {}

    def set(self, key, value):
        self.data[key] = value

    def get(self, key):
        return self.data.get(key)


@ray.remote
class AsyncFetcher:
    async def fetch(self, i):
        await asyncio.sleep(0.05)  # 20 of these overlap inside one actor process
        return i


refs = [fib_task.remote(n) for n in range(15)]
ready, not_ready = ray.wait(refs, num_returns=5, timeout=10)
print("first five ready:", len(ready), "| all:", ray.get(refs))

big = ray.put(list(range(100_000)))
print("sum of a put list, in a task:", ray.get(ray.remote(lambda xs: sum(xs)).remote(big)))

try:
    ray.get(fails.remote())
except ValueError as exc:  # the remote ValueError, with the remote traceback in its text
    print("caught remote ValueError:", type(exc).__name__)

kv = KeyValue.options(name="kv", namespace="demo").remote()
ray.get(kv.set.remote("answer", 42))
same_kv = ray.get_actor("kv", namespace="demo")
print("named actor lookup:", ray.get(same_kv.get.remote("answer")))

fetcher = AsyncFetcher.remote()
calls = [fetcher.fetch.remote(i) for i in range(20)]
print("async actor, 20 overlapping calls:", sum(ray.get(calls)))

print("cluster CPUs:", ray.cluster_resources().get("CPU"))
ray.kill(kv)
ray.shutdown()
print("ok")
