"""An agent swarm on actorium: one planner actor, a fan-out of sub-agents, many tool calls.

    python examples/agent_swarm.py            # a new random run each time
    python examples/agent_swarm.py --seed 42  # the same plan again (latencies still vary)

The "model" is a scripted stand-in (seeded random choices, no network), so the demo runs
anywhere; swap ScriptedModel for a real LLM client and the runtime code stays the same.
Only the Ray-compatible core is used: replace ``import actorium`` with
``import actorium as ray`` and the names below read exactly like a Ray Core script.
"""
from __future__ import annotations

import argparse
import collections
import random
import sys
import time
import zlib

import numpy as np

import actorium

TOPICS = ["actor", "lease", "object", "shard", "token", "latency", "sandbox", "journal",
          "replica", "vector", "planner", "cache", "retry", "stream", "memory", "network"]
FILLER = ["the", "a", "of", "and", "runs", "keeps", "sends", "fast", "small", "each",
          "node", "call", "state", "worker", "reply", "queue", "owner", "value", "data"]
STOP = {"the", "a", "of", "and", "each"}
GOALS = ["Write a field report on how the cluster handles {} and {}",
         "Find the weak spots of our {} layer under {} pressure",
         "Explain {} to a new engineer, with numbers about {}"]
DIM = 256  # width of the hashed bag-of-words vectors used by the search tool


class ToolTimeout(Exception):
    """A flaky tool backend gave up; the runtime retries the call (retry_exceptions)."""


class ScriptedModel:
    """Stands in for an LLM: plausible text and plans, seeded so a run can be replayed."""

    def __init__(self, seed: int):
        self.rng = random.Random(seed)

    def goal(self) -> str:
        return self.rng.choice(GOALS).format(*self.rng.sample(TOPICS, 2))

    def speak(self, text: str):
        # Tokens arrive one by one with a model-like delay; the caller sees them as
        # they are produced because the actor method is a streaming generator.
        for word in text.split():
            time.sleep(self.rng.uniform(0.005, 0.03))
            yield word + " "

    def decompose(self, goal: str) -> list[dict]:
        topics = [w for w in goal.lower().split() if w in TOPICS]
        return [{"id": i, "query": " ".join(topics + self.rng.sample(TOPICS, 2)),
                 "math": self.rng.random() < 0.5, "limit": self.rng.randrange(50_000, 400_000)}
                for i in range(self.rng.randint(6, 10))]


# --- tools: small real computations, with random latency like a remote API ------------
def _embed(words) -> np.ndarray:
    # crc32, not hash(): str hashes are salted per process and the driver, the tools and
    # the index all have to agree on the vector of a word.
    v = np.zeros(DIM, np.float32)
    for w in words:
        v[zlib.crc32(w.encode()) % DIM] += 1.0
    return v / (np.linalg.norm(v) or 1.0)


# Tools do more waiting than computing, so each asks for half a CPU: twice as many run
# at once on the same cores.
@actorium.remote(num_cpus=0.5, max_retries=3, retry_exceptions=[ToolTimeout])
def search(query: str, index: np.ndarray, k: int = 5) -> list[int]:
    """Top-k documents by cosine similarity. ``index`` is a read-only zero-copy view of
    the array in the node's shared-memory store: no copy per call, however many tools."""
    time.sleep(random.uniform(0.01, 0.08))
    if random.random() < 0.1:  # unseeded on purpose: backend flakiness is not the plan's
        raise ToolTimeout(f"search backend timed out on {query!r}")
    scores = index @ _embed(query.split())
    return [int(i) for i in np.argsort(scores)[::-1][:k]]


@actorium.remote(num_cpus=0.5)
def word_stats(doc_ids: list[int], docs: list[str]) -> dict:
    time.sleep(random.uniform(0.005, 0.04))
    counts = collections.Counter(w for i in doc_ids for w in docs[i].split() if w not in STOP)
    return {"words": sum(counts.values()), "top": [w for w, _ in counts.most_common(3)]}


@actorium.remote(num_cpus=0.5)
def prime_sieve(limit: int) -> int:
    time.sleep(random.uniform(0.005, 0.04))
    sieve = np.ones(limit, dtype=bool)
    sieve[:2] = False
    for p in range(2, int(limit ** 0.5) + 1):
        if sieve[p]:
            sieve[p * p::p] = False
    return int(sieve.sum())


# --- sub-agents: one task per sub-goal, each calling a few tools --------------------
@actorium.remote
def sub_agent(task: dict, corpus: dict) -> dict:
    """``corpus`` holds ObjectRefs *inside a dict*, so they arrive here as refs, not
    values (Ray semantics); we hand them on to the tools without touching the data."""
    start = time.perf_counter()
    time.sleep(random.uniform(0.02, 0.06))  # the sub-agent's own "model call"
    hits = search.remote(task["query"], corpus["index"])
    # ``hits`` goes straight into the next tool: the runtime resolves it before
    # word_stats runs, and the hit list never travels through this process.
    calls = [hits, word_stats.remote(hits, corpus["docs"])]
    if task["math"]:
        calls.append(prime_sieve.remote(task["limit"]))
    try:
        found = actorium.get(calls)  # blocking here lends our CPU back to the tools
        note = f"top words {found[1]['top']}"
        if task["math"]:
            note += f", {found[2]} primes below {task['limit']}"
    except ToolTimeout as exc:  # a remote ToolTimeout is caught as one, after retries
        note = f"gave up: {exc.cause}"
    return {"id": task["id"], "tools": len(calls), "note": note,
            "secs": time.perf_counter() - start}


# --- the planner: a stateful actor owning the conversation ---------------------------
@actorium.remote
class Planner:
    def __init__(self, seed: int):
        self.model = ScriptedModel(seed)
        self.findings: list[dict] = []

    def goal(self) -> str:
        return self.model.goal()

    @actorium.method(num_returns="streaming")
    def think(self, goal: str):
        yield from self.model.speak(f"Goal: {goal}. I will split it into sub-questions, "
                                    f"send one sub-agent per question, and merge what "
                                    f"they find.")

    def decompose(self, goal: str) -> list[dict]:
        return self.model.decompose(goal)

    @actorium.method(num_returns="streaming")
    def execute(self, tasks: list[dict], corpus: dict):
        """Fan out one sub-agent per task and report each as it finishes, fastest first."""
        pending = {sub_agent.remote(t, corpus): t for t in tasks}
        while pending:
            done, _ = actorium.wait(list(pending), num_returns=1)
            pending.pop(done[0])
            result = actorium.get(done[0])
            self.findings.append(result)
            yield {**result, "done": len(self.findings), "total": len(tasks)}

    @actorium.method(num_returns="streaming")
    def answer(self):
        ok = [f for f in self.findings if not f["note"].startswith("gave up")]
        slow = max(self.findings, key=lambda f: f["secs"])
        yield from self.model.speak(
            f"Merged {len(ok)} of {len(self.findings)} findings. Most of the signal is in "
            f"sub-question {ok[0]['id'] if ok else '-'}: {ok[0]['note'] if ok else 'none'}. "
            f"The slowest sub-agent ({slow['id']}) took {slow['secs']:.2f}s.")


def build_corpus(seed: int, n_docs: int = 600) -> tuple[list[str], np.ndarray]:
    rng = random.Random(seed)
    docs = [" ".join(rng.choice(TOPICS if rng.random() < 0.3 else FILLER) for _ in range(40))
            for _ in range(n_docs)]
    return docs, np.stack([_embed(d.split()) for d in docs])


def stream_text(gen) -> None:
    """Print a token stream as it arrives, like a chat UI."""
    for ref in gen:
        print(actorium.get(ref), end="", flush=True)
    print()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=time.time_ns() % 1_000_000)
    seed = parser.parse_args().seed
    stages: dict[str, float] = {}
    t0 = mark = time.perf_counter()

    def stage(name: str) -> None:
        nonlocal mark
        now = time.perf_counter()
        stages[name] = now - mark
        mark = now

    actorium.init()
    stage("start cluster")
    docs, index = build_corpus(seed)
    # Put once, share everywhere: both exceed the 100 KiB inline limit, so they live in
    # the node's shared-memory store and every tool maps the same bytes.
    corpus = {"docs": actorium.put(docs), "index": actorium.put(index)}
    planner = Planner.remote(seed)
    goal = actorium.get(planner.goal.remote())
    stage("corpus + planner")
    print(f"seed {seed}; corpus {len(docs)} docs, index {index.nbytes // 1024} KiB\n")

    print("planner> ", end="")
    stream_text(planner.think.remote(goal))
    tasks = actorium.get(planner.decompose.remote(goal))
    stage("plan")

    print(f"\nfanning out {len(tasks)} sub-agents:")
    tool_calls = 0
    for ref in planner.execute.remote(tasks, corpus):
        ev = actorium.get(ref)
        tool_calls += ev["tools"]
        print(f"  [{ev['done']:2d}/{ev['total']}] sub-agent {ev['id']} in {ev['secs']:.2f}s "
              f"({ev['tools']} tools): {ev['note']}")
    stage("fan-out")

    print("\nplanner> ", end="")
    stream_text(planner.answer.remote())
    stage("answer")
    actorium.shutdown()
    stage("shutdown")

    wall = time.perf_counter() - t0
    n_tasks = len(tasks) + tool_calls
    print("\nstage times: " + ", ".join(f"{k} {v:.2f}s" for k, v in stages.items()))
    print(f"summary: wall {wall:.2f}s, {n_tasks} tasks ({len(tasks)} sub-agents + "
          f"{tool_calls} tool calls) + 5 planner calls, "
          f"{n_tasks / stages['fan-out']:.1f} tasks/s during fan-out")
    return 0


if __name__ == "__main__":
    sys.exit(main())
