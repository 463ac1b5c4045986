"""Object payloads between nodes travel on the raylets' data ports (plain TCP after an
HMAC handshake, actorium/raylet/data_path.py), intact whatever their size; with
ACTORIUM_ENCRYPT_OBJECTS=1 they travel over CURVE as before."""
from __future__ import annotations

import hashlib

import numpy as np
import pytest

import actorium
from actorium.core.wire import protocol, transport
from actorium.raylet import data_path
from actorium.util.scheduling_strategies import NodeAffinitySchedulingStrategy

MIB = 1 << 20


def on(node):
    return NodeAffinitySchedulingStrategy(node.node_id, soft=False)


@actorium.remote(num_cpus=0)
def make_bytes(n: int, seed: int):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=n, dtype=np.uint8)


@actorium.remote(num_cpus=0)
def digest(arr):
    return arr.nbytes, hashlib.sha256(arr.tobytes()).hexdigest()


def _pulls(node) -> dict:
    stats = transport.rpc(node.raylet_address, protocol.NodeStats(transport.next_req_id()),
                          timeout=10, what="a raylet")
    return stats["pulls"]


def _expected(n: int, seed: int) -> str:
    rng = np.random.default_rng(seed)
    return hashlib.sha256(rng.integers(0, 256, size=n, dtype=np.uint8).tobytes()).hexdigest()


def _two_nodes(make_cluster):
    c = make_cluster()
    return c, c.add_node(num_cpus=1), c.add_node(num_cpus=1)


# Sizes: empty-ish, one byte, just under/over the split threshold, not a multiple of a
# page or of the stream count, and larger than the CURVE path's window (8 x 8 MiB).
SIZES = [1, 4095, data_path.MIN_SPLIT - 1, data_path.MIN_SPLIT + 3, 3 * MIB + 1,
         64 * MIB + 12345, 70 * MIB - 7]


def test_objects_of_every_size_arrive_intact_over_the_data_path(make_cluster):
    _, a, b = _two_nodes(make_cluster)
    assert a.info["data_addr"].startswith("127.0.0.1:"), a.info
    refs = [make_bytes.options(scheduling_strategy=on(a)).remote(n, n) for n in SIZES]
    actorium.wait(refs, num_returns=len(refs), fetch_local=False)
    got = actorium.get([digest.options(scheduling_strategy=on(b)).remote(r) for r in refs])
    assert got == [(n, _expected(n, n)) for n in SIZES]
    pulls = _pulls(b)
    stored = [n for n in SIZES if n >= MIB]  # smaller ones travel inline with the task
    assert pulls["data_path"] >= len(stored) and pulls["curve"] == 0, pulls


def test_data_path_streams_several_objects_at_once(make_cluster):
    _, a, b = _two_nodes(make_cluster)
    refs = [make_bytes.options(scheduling_strategy=on(a)).remote(9 * MIB + i, i)
            for i in range(6)]
    actorium.wait(refs, num_returns=len(refs), fetch_local=False)
    got = actorium.get([digest.options(scheduling_strategy=on(b)).remote(r) for r in refs])
    assert got == [(9 * MIB + i, _expected(9 * MIB + i, i)) for i in range(6)]


def test_integrity_option_adds_a_keyed_hash_per_reply(make_cluster, monkeypatch):
    monkeypatch.setenv("ACTORIUM_OBJECT_MAC", "1")
    _, a, b = _two_nodes(make_cluster)
    ref = make_bytes.options(scheduling_strategy=on(a)).remote(20 * MIB + 5, 7)
    actorium.wait([ref], fetch_local=False)
    assert actorium.get(digest.options(scheduling_strategy=on(b)).remote(ref)) == \
        (20 * MIB + 5, _expected(20 * MIB + 5, 7))
    assert _pulls(b)["data_path"] >= 1


@pytest.mark.parametrize("value", ["1"])
def test_encrypt_objects_keeps_payloads_on_curve(make_cluster, monkeypatch, value):
    monkeypatch.setenv("ACTORIUM_ENCRYPT_OBJECTS", value)
    _, a, b = _two_nodes(make_cluster)
    assert a.info["data_addr"] == "" and b.info["data_addr"] == ""
    ref = make_bytes.options(scheduling_strategy=on(a)).remote(17 * MIB + 3, 3)
    actorium.wait([ref], fetch_local=False)
    assert actorium.get(digest.options(scheduling_strategy=on(b)).remote(ref)) == \
        (17 * MIB + 3, _expected(17 * MIB + 3, 3))
    pulls = _pulls(b)
    assert pulls["curve"] >= 1 and pulls["data_path"] == 0, pulls
