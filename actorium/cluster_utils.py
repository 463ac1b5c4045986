"""A multi-node cluster on one machine, for tests and experiments, as
``ray.cluster_utils.Cluster``::

    from actorium.cluster_utils import Cluster
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    node = cluster.add_node(num_cpus=2, resources={"browser": 1})
    actorium.init(address=cluster.address)
    ...
    cluster.remove_node(node, allow_graceful=False)   # SIGKILL of its process group
    actorium.shutdown(); cluster.shutdown()

Each node is a real node process in its own process group (own session), with its
own TCP ports and its own /dev/shm store; all of them share one session directory
(logs and the gcs's tables). Nodes stop by themselves when the process that made the
Cluster exits, however it exits. ``shutdown`` stops every node, head last, and removes the
session's sockets, spill files and /dev/shm stores.
"""
from __future__ import annotations

import os
import subprocess
import time

from actorium.core import api, launcher
from actorium.core.wire import auth, protocol, transport

__all__ = ["Cluster", "ClusterNode"]


class ClusterNode:
    """One node of a Cluster. ``node_id`` is the id ``actorium.nodes()`` lists and
    ``get_runtime_context().get_node_id()`` returns on that node."""

    def __init__(self, proc: subprocess.Popen, info: dict, head: bool, args: dict):
        self.process = proc
        self.info = info
        self.head = head
        self.args = args
        self.node_id: str = info["node_id"]
        self.unique_id = self.node_id
        self.pid: int = info["pid"]
        self.raylet_address: str = info["raylet_addr"]
        self.store_root: str = info["store_root"]

    @property
    def address(self) -> str:
        return self.info.get("gcs_tcp", "")[6:]

    def alive(self) -> bool:
        return self.process.poll() is None

    def __repr__(self) -> str:
        return f"ClusterNode({self.node_id}, head={self.head}, pid={self.pid})"


class Cluster:
    def __init__(self, initialize_head: bool = False, connect: bool = False,
                 head_node_args: dict | None = None, shutdown_at_exit: bool = True):
        self.session_dir = launcher.new_session_dir()
        # Every node watches this process and stops when it is gone, even SIGKILLed:
        # a test or notebook that dies never leaves a cluster behind.
        self.creator_pid = os.getpid()
        self.head_node: ClusterNode | None = None
        self.worker_nodes: list[ClusterNode] = []
        self.removed: list[ClusterNode] = []
        self._gcs = ""
        self._connected = False
        # One token for all the cluster's nodes, handed to each through a pipe; this
        # process's sockets to the gcs and init(address=self.address) here find it
        # (auth.remember_cluster_token); other processes need it passed (self.token).
        self.token = auth.Token(auth.generate_token(), "this Cluster")
        if shutdown_at_exit:
            import atexit
            atexit.register(self.shutdown)
        if initialize_head:
            self.add_node(**(head_node_args or {}))
            if connect:
                self.connect()

    # -- nodes ----------------------------------------------------------------------
    @property
    def address(self) -> str:
        """``host:port`` of the gcs: pass it to ``actorium.init(address=...)``."""
        if self.head_node is None:
            raise RuntimeError("the cluster has no head node yet")
        return self._gcs[6:]

    @property
    def gcs_address(self) -> str:
        return self.address

    def add_node(self, wait: bool = True, *, num_cpus: float = 1, num_gpus: float = 0,
                 resources: dict | None = None, object_store_memory: int = 0,
                 host: str = "127.0.0.1", port: int = 0, node_timeout: float = 0.0,
                 prefix: list | None = None, **ignored) -> ClusterNode:
        """Start a node (the head, for the first one). ``prefix`` runs the node under
        another command (``["ip", "netns", "exec", name]``). Returns its handle once it
        has registered with the gcs."""
        head = self.head_node is None
        args = dict(num_cpus=num_cpus, num_gpus=num_gpus, resources=resources,
                    object_store_memory=object_store_memory, host=host, port=port,
                    node_timeout=node_timeout, prefix=prefix)
        proc, info = launcher.start_node(
            self.session_dir, head=head, num_cpus=num_cpus, num_gpus=num_gpus,
            resources=resources, gcs_address=self._gcs, port=port, host=host,
            object_store_memory=object_store_memory, tcp=True, node_timeout=node_timeout,
            prefix=prefix, driver_pid=self.creator_pid, token=self.token)
        node = ClusterNode(proc, info, head, args)
        if head:
            self.head_node = node
            self._gcs = info["gcs_tcp"]
            auth.remember_cluster_token(self._gcs, self.token)
        else:
            self.worker_nodes.append(node)
        if wait:
            self.wait_for_nodes()
        return node

    def remove_node(self, node: ClusterNode, allow_graceful: bool = True) -> None:
        """Stop a node: SIGTERM and wait when graceful, else SIGKILL of its whole process
        group (the node, its zygote, its workers; the gcs too for the head)."""
        if allow_graceful:
            launcher.stop_node(node.process)
        else:
            launcher.kill_group(node.pid)
            try:
                node.process.wait(5)
            except subprocess.TimeoutExpired:
                pass
        if node in self.worker_nodes:
            self.worker_nodes.remove(node)
        if node is self.head_node:
            self.head_node = None
        self.removed.append(node)

    def restart_head(self, timeout: float = 30.0) -> ClusterNode:
        """Start a new head on the dead head's address and session (the gcs reloads its
        tables from disk). The old head must have been removed."""
        old = next((n for n in reversed(self.removed) if n.head), None)
        if old is None or self.head_node is not None:
            raise RuntimeError("restart_head() needs a removed head and no live one")
        port = int(self._gcs.rsplit(":", 1)[1])
        args = dict(old.args, port=port)
        proc, info = launcher.start_node(
            self.session_dir, head=True, num_cpus=args["num_cpus"], num_gpus=args["num_gpus"],
            resources=args["resources"], port=port, host=args["host"],
            object_store_memory=args["object_store_memory"], tcp=True,
            node_timeout=args["node_timeout"], prefix=args["prefix"], timeout=timeout,
            driver_pid=self.creator_pid, token=self.token)
        self.head_node = ClusterNode(proc, info, True, args)
        return self.head_node

    def list_all_nodes(self) -> list[ClusterNode]:
        return ([self.head_node] if self.head_node else []) + list(self.worker_nodes)

    def _gcs_nodes(self) -> list:
        return transport.rpc(self._gcs, protocol.ListState(transport.next_req_id(), "nodes"),
                             timeout=5, what="the gcs")

    def wait_for_nodes(self, timeout: float = 30.0) -> None:
        """Until the gcs lists every added node alive and every removed one dead."""
        want_alive = {n.node_id for n in self.list_all_nodes()}
        want_dead = {n.node_id for n in self.removed} - want_alive
        deadline = time.monotonic() + timeout
        while True:
            try:
                listed = {n["node_id"]: n["alive"] for n in self._gcs_nodes()}
            except TimeoutError:
                listed = {}
            if all(listed.get(n) for n in want_alive) and \
                    not any(listed.get(n) for n in want_dead):
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"nodes did not reach the expected state within "
                                   f"{timeout:g}s: {listed}")
            time.sleep(0.05)

    def connect(self, namespace: str | None = None) -> dict:
        info = api.init(address=self.address, namespace=namespace)
        self._connected = True
        return info

    # -- teardown ---------------------------------------------------------------------
    def shutdown(self) -> None:
        """Disconnect a driver connected here, stop all nodes (head last), remove the
        session's sockets, spill files and /dev/shm stores. Idempotent."""
        if api.is_initialized() and self._gcs and \
                api._session.info.get("address") in (self._gcs, self._gcs[6:]):
            api.shutdown()
        for node in list(self.worker_nodes):
            self.remove_node(node, allow_graceful=True)
        if self.head_node is not None:
            self.remove_node(self.head_node, allow_graceful=True)
        for node in self.removed:  # a killed node's workers may outlive it briefly
            launcher.kill_group(node.pid)
        launcher.cleanup_session(self.session_dir)
        if self._gcs:
            auth.forget_cluster_token(self._gcs)
        try:
            os.rmdir(launcher.session_store_dir(self.session_dir))
        except OSError:
            pass
