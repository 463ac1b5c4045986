"""The autoscaler process: ``python -m actorium.autoscaler.monitor --gcs tcp://... ``.

Every ``poll_period`` it reads the gcs's demand listing, asks ``policy.decide`` what to
do, creates nodes through the provider, and removes idle ones in two steps: drain
(``DrainNode``: the gcs stops placing work there and answers whether the node is idle)
then terminate — or, if work arrived in between, undrain. Its configuration, nodes
and last decisions are published in the gcs KV under ``autoscaler/status`` (msgpack)
for ``actorium status``.

Lifetime: started detached by ``actorium start --head --autoscale`` (``start``), with the
cluster token in an inherited pipe. It exits on SIGTERM (``actorium stop``) or when the
head node process is gone, terminating every node it created first; the nodes also
watch its pid, so even a SIGKILLed monitor leaves nothing running.
"""
from __future__ import annotations

import argparse
import collections
import os
import signal
import subprocess
import sys
import time

import msgpack

from actorium.autoscaler import policy
from actorium.autoscaler.provider import PROVIDERS
from actorium.core.wire import auth, protocol, transport
from actorium.raylet.procs import alive as _alive

STATUS_KEY = b"autoscaler/status"
RPC_TIMEOUT = 5.0


class Monitor:
    def __init__(self, gcs: str, provider, cfg: policy.Config, head_pid: int = 0):
        self.gcs = gcs
        self.provider = provider
        self.cfg = cfg
        self.head_pid = head_pid
        self.managed: dict[str, float] = {}  # node id -> created at (wall time)
        self.decisions: collections.deque = collections.deque(maxlen=20)
        self.unmet_polls = 0
        self.stopping = False
        self.last = {"pending": 0, "infeasible": 0}

    def _rpc(self, msg):
        return transport.rpc(self.gcs, msg, timeout=RPC_TIMEOUT, what="the gcs")

    def log(self, text: str) -> None:
        self.decisions.append([time.time(), text])
        print(f"autoscaler: {text}", flush=True)

    def step(self) -> None:
        demand = self._rpc(protocol.ListState(transport.next_req_id(), "demand"))
        alive = {n["node_id"] for n in demand["nodes"]}
        for node_id in list(self.managed):
            if node_id not in alive or node_id not in self.provider.non_terminated_nodes():
                self.log(f"node {node_id[:12]} is gone (not removed by the autoscaler)")
                self.provider.terminate_node(node_id)
                del self.managed[node_id]
        plan = policy.decide(demand, set(self.managed), self.provider.node_resources(),
                             self.cfg, self.unmet_polls)
        self.unmet_polls = self.unmet_polls + 1 if plan.unmet else 0
        self.last = {"pending": len(plan.unmet), "infeasible": len(plan.infeasible)}
        for reason in plan.reasons:
            if not self.decisions or self.decisions[-1][1] != reason:
                self.log(reason)
        for _ in range(plan.launch):
            try:
                node_id = self.provider.create_node()
            except RuntimeError as exc:
                self.log(f"the provider failed to create a node: {str(exc).splitlines()[0]}")
                break
            self.managed[node_id] = time.time()
            self.log(f"created node {node_id[:12]}")
            self.unmet_polls = 0
        for node_id in plan.terminate:
            self._remove(node_id)
        self.publish()

    def _remove(self, node_id: str) -> None:
        answer = self._rpc(protocol.DrainNode(transport.next_req_id(), node_id, True))
        if not answer["idle"]:
            self._rpc(protocol.DrainNode(transport.next_req_id(), node_id, False))
            self.log(f"node {node_id[:12]} got work while draining; kept")
            return
        self.provider.terminate_node(node_id)
        self.managed.pop(node_id, None)
        self.log(f"removed idle node {node_id[:12]}")

    def publish(self) -> None:
        status = {"provider": self.provider.name, "min_nodes": self.cfg.min_nodes,
                  "max_nodes": self.cfg.max_nodes, "idle_timeout": self.cfg.idle_timeout,
                  "node_resources": self.provider.node_resources(), "pid": os.getpid(),
                  "nodes": sorted(self.managed), "decisions": list(self.decisions),
                  **self.last}
        self._rpc(protocol.KvPut(transport.next_req_id(), STATUS_KEY, msgpack.packb(status),
                                 True))

    def run(self) -> None:
        while not self.stopping:
            if self.head_pid and not _alive(self.head_pid):
                print("autoscaler: the head node is gone; stopping", flush=True)
                break
            try:
                self.step()
            except (TimeoutError, transport.RpcError, protocol.ProtocolError) as exc:
                print(f"autoscaler: this round failed: {exc}", flush=True)
            deadline = time.monotonic() + self.cfg.poll_period
            while not self.stopping and time.monotonic() < deadline:
                time.sleep(0.05)

    def close(self) -> None:
        self.provider.close()


def start(gcs_tcp: str, session_dir: str, *, provider: str, token, head_pid: int,
          min_nodes: int, max_nodes: int, node_cpus: float, idle_timeout: float,
          poll_period: float = 0.5) -> subprocess.Popen:
    """Start the monitor detached (own session, logs in the session's ``logs/``), the
    token in an inherited pipe. Bad configuration raises ValueError here, not later."""
    if provider not in PROVIDERS:
        raise ValueError(f"unknown autoscaler provider {provider!r}; known: "
                         f"{', '.join(sorted(PROVIDERS))}")
    policy.Config(min_nodes, max_nodes, idle_timeout, poll_period)
    if node_cpus <= 0:
        raise ValueError(f"node_cpus must be > 0, got {node_cpus}")
    cmd = [sys.executable, "-m", "actorium.autoscaler.monitor", "--gcs", gcs_tcp,
           "--session-dir", session_dir, "--provider", provider, "--head-pid", str(head_pid),
           "--min-nodes", str(min_nodes), "--max-nodes", str(max_nodes),
           "--node-cpus", str(node_cpus), "--idle-timeout", str(idle_timeout),
           "--poll-period", str(poll_period)]
    fd = auth.token_pipe(token)
    cmd += ["--token-fd", str(fd)]
    log = open(os.path.join(session_dir, "logs", "autoscaler.log"), "ab")
    try:
        return subprocess.Popen(cmd, stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                                start_new_session=True, close_fds=True, pass_fds=(fd,))
    finally:
        log.close()
        os.close(fd)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="actorium-autoscaler")
    p.add_argument("--gcs", required=True)
    p.add_argument("--session-dir", required=True)
    p.add_argument("--provider", default="local", choices=sorted(PROVIDERS))
    p.add_argument("--head-pid", type=int, default=0)
    p.add_argument("--min-nodes", type=int, default=0)
    p.add_argument("--max-nodes", type=int, default=1)
    p.add_argument("--node-cpus", type=float, default=1.0)
    p.add_argument("--idle-timeout", type=float, default=60.0)
    p.add_argument("--poll-period", type=float, default=0.5)
    p.add_argument("--token-fd", type=int, default=-1)
    args = p.parse_args(argv)
    if args.token_fd >= 0:
        auth.adopt_token_fd(args.token_fd)
    token = auth.process_token()
    cfg = policy.Config(args.min_nodes, args.max_nodes, args.idle_timeout, args.poll_period)
    provider = PROVIDERS[args.provider](args.gcs, args.session_dir, args.node_cpus, token)
    monitor = Monitor(args.gcs, provider, cfg, args.head_pid)
    signal.signal(signal.SIGTERM, lambda *_: setattr(monitor, "stopping", True))
    signal.signal(signal.SIGINT, lambda *_: setattr(monitor, "stopping", True))
    try:
        monitor.run()
    finally:
        monitor.close()
        transport.close_thread_sockets()


if __name__ == "__main__":
    main()
