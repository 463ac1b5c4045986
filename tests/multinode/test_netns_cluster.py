"""Three nodes in their own network namespaces, each with its own address on a bridge,
so every cross-node message and object transfer really crosses network interfaces.

Needs root and ``ip netns``; skipped with the reason otherwise. Namespaces, veths and
the bridge are removed in ``finally`` whatever happens.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import uuid

import numpy as np
import pytest

import actorium
from actorium.cluster_utils import Cluster
from actorium.util.scheduling_strategies import NodeAffinitySchedulingStrategy
from mn_helpers import node_of

SUBNET = "10.231.{}.{}"


def _ip(*args, check=True):
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check)


def _netns_unavailable() -> str:
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None:
        return "the 'ip' command (iproute2) is not installed"
    probe = f"amn-probe-{uuid.uuid4().hex[:6]}"
    try:
        if _ip("netns", "add", probe, check=False).returncode != 0:
            return "'ip netns add' is not permitted here"
    finally:
        _ip("netns", "del", probe, check=False)
    return ""


class Namespaces:
    """A bridge in the root namespace and one namespace per node, joined by veths."""

    def __init__(self, count: int):
        tag = uuid.uuid4().hex[:4]
        self.bridge = f"amnbr{tag}"
        self.net = int(tag, 16) % 200 + 20
        self.names = [f"amn-{tag}-{i}" for i in range(count)]
        self.veths = [f"amv{tag}{i}" for i in range(count)]
        self.gateway = SUBNET.format(self.net, 1)
        self.addrs = [SUBNET.format(self.net, 10 + i) for i in range(count)]

    def create(self) -> None:
        _ip("link", "add", self.bridge, "type", "bridge")
        _ip("addr", "add", f"{self.gateway}/24", "dev", self.bridge)
        _ip("link", "set", self.bridge, "up")
        for name, veth, addr in zip(self.names, self.veths, self.addrs):
            _ip("netns", "add", name)
            _ip("link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", name)
            _ip("link", "set", veth, "master", self.bridge)
            _ip("link", "set", veth, "up")
            _ip("-n", name, "addr", "add", f"{addr}/24", "dev", "eth0")
            _ip("-n", name, "link", "set", "eth0", "up")
            _ip("-n", name, "link", "set", "lo", "up")

    def destroy(self) -> None:
        for name, veth in zip(self.names, self.veths):
            _ip("link", "del", veth, check=False)
            _ip("netns", "del", name, check=False)
        _ip("link", "del", self.bridge, check=False)


def test_three_nodes_in_separate_network_namespaces_share_work_and_objects():
    reason = _netns_unavailable()
    if reason:
        pytest.skip(reason)
    ns = Namespaces(3)
    cluster = None
    try:
        ns.create()
        prefix = [["ip", "netns", "exec", name] for name in ns.names]
        cluster = Cluster(initialize_head=True, shutdown_at_exit=False, head_node_args={
            "num_cpus": 1, "host": ns.addrs[0], "prefix": prefix[0]})
        b = cluster.add_node(num_cpus=1, host=ns.addrs[1], prefix=prefix[1])
        c = cluster.add_node(num_cpus=1, host=ns.addrs[2], prefix=prefix[2])
        assert cluster.address.startswith(ns.addrs[0])
        assert b.raylet_address.startswith(f"tcp://{ns.addrs[1]}:")
        actorium.init(address=cluster.address)

        on_b = NodeAffinitySchedulingStrategy(b.node_id, soft=False)
        on_c = NodeAffinitySchedulingStrategy(c.node_id, soft=False)

        @actorium.remote(num_cpus=0)
        def make(n):
            return np.arange(n, dtype=np.float64)

        @actorium.remote(num_cpus=0)
        def total(arr):
            return float(arr.sum()), actorium.get_runtime_context().get_node_id()

        n = 3 << 20  # 24 MiB: several chunks from b's namespace to c's
        ref = make.options(scheduling_strategy=on_b).remote(n)
        s, where = actorium.get(total.options(scheduling_strategy=on_c).remote(ref), timeout=60)
        assert (s, where) == (float(np.arange(n, dtype=np.float64).sum()), c.node_id)
        assert actorium.get(ref, timeout=60)[-1] == n - 1  # and to the driver in the root namespace
        assert set(actorium.get([node_of.options(scheduling_strategy="SPREAD").remote()
                                 for _ in range(6)])) == {cluster.head_node.node_id,
                                                         b.node_id, c.node_id}
    finally:
        actorium.shutdown()
        if cluster is not None:
            cluster.shutdown()
        ns.destroy()
