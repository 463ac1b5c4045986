"""Node providers: how the autoscaler gets and gives back nodes.

A provider is three calls. To add a Kubernetes or cloud provider, subclass
``NodeProvider``: ``create_node`` asks the platform for one node (a pod, a VM) that runs
``actorium start --address <gcs> --num-cpus N`` with the cluster token (a mounted secret,
never a command-line argument) and returns the id the node registers under (pass
``--node-id``-equivalent metadata, or read it back from the gcs's node list);
``terminate_node`` deletes it; ``non_terminated_nodes`` lists the nodes the provider
still runs, so the autoscaler can adopt them after a restart and never leaks one.
Calls may block (a cloud API takes seconds); the monitor runs them in its own process.
"""
from __future__ import annotations

import os
import subprocess

from actorium.core import launcher


class NodeProvider:
    """The interface. ``node_resources`` is what one new node offers, so the policy
    knows which demand a new node can hold at all."""

    name = "abstract"

    def node_resources(self) -> dict:
        raise NotImplementedError

    def create_node(self) -> str:
        """Start one node and return its node id once it has joined the cluster."""
        raise NotImplementedError

    def terminate_node(self, node_id: str) -> None:
        """Stop the node (it has been drained) and release what it used."""
        raise NotImplementedError

    def non_terminated_nodes(self) -> list[str]:
        raise NotImplementedError

    def close(self) -> None:
        """Terminate every node this provider still runs (the autoscaler stops)."""
        for node_id in self.non_terminated_nodes():
            self.terminate_node(node_id)


class LocalNodeProvider(NodeProvider):
    """Nodes as real node processes on this machine, started the way
    ``Cluster.add_node`` and ``actorium start --address`` start them: each in its own
    process group with its own ports and /dev/shm store, sharing the head's session
    directory for logs. Each watches this process (``--driver-pid``) and stops by itself
    if the autoscaler dies, however it dies."""

    name = "local"

    def __init__(self, gcs_tcp: str, session_dir: str, num_cpus: float, token,
                 host: str = "127.0.0.1"):
        self.gcs_tcp = gcs_tcp
        self.session_dir = session_dir
        self.num_cpus = float(num_cpus)
        self.token = token
        self.host = host
        self.procs: dict[str, subprocess.Popen] = {}

    def node_resources(self) -> dict:
        import psutil
        # What raylet/node.py gives a node by default: its CPUs and 70% of the RAM.
        return {"CPU": self.num_cpus, "memory": float(int(psutil.virtual_memory().total * 0.7))}

    def create_node(self) -> str:
        proc, info = launcher.start_node(
            self.session_dir, head=False, num_cpus=self.num_cpus, gcs_address=self.gcs_tcp,
            host=self.host, tcp=True, driver_pid=os.getpid(), token=self.token, timeout=30)
        self.procs[info["node_id"]] = proc
        return info["node_id"]

    def terminate_node(self, node_id: str) -> None:
        proc = self.procs.pop(node_id, None)
        if proc is not None:
            launcher.stop_node(proc)  # SIGTERM (the node says goodbye), then its group

    def non_terminated_nodes(self) -> list[str]:
        for node_id, proc in list(self.procs.items()):
            if proc.poll() is not None:  # died on its own: reaped, forgotten
                launcher.kill_group(proc.pid)
                del self.procs[node_id]
        return list(self.procs)


PROVIDERS = {"local": LocalNodeProvider}
