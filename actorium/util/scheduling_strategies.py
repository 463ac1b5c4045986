"""Scheduling strategies, importable as in Ray:
``from actorium.util.scheduling_strategies import NodeAffinitySchedulingStrategy``.

Pass one as ``scheduling_strategy=`` to ``.options()`` or ``@actorium.remote``, or
the string ``"SPREAD"`` (spread over the nodes where the work fits) or ``"DEFAULT"``.
"""
from __future__ import annotations

from actorium.scheduling.placement import NODE_AFFINITY

__all__ = ["NodeAffinitySchedulingStrategy", "DEFAULT_SCHEDULING_STRATEGY",
           "SPREAD_SCHEDULING_STRATEGY"]

DEFAULT_SCHEDULING_STRATEGY = "DEFAULT"
SPREAD_SCHEDULING_STRATEGY = "SPREAD"


class NodeAffinitySchedulingStrategy:
    """Run on the node ``node_id`` (a ``NodeID`` from ``actorium.nodes()`` or
    ``get_runtime_context().get_node_id()``). If that node is dead or can never hold
    the work: with ``soft=False`` the task fails (``TaskUnschedulableError``) or the
    actor cannot be created; with ``soft=True`` it is scheduled as by default."""

    def __init__(self, node_id: str, soft: bool, _spill_on_unavailable: bool = False,
                 _fail_on_unavailable: bool = False):
        if not isinstance(node_id, str) or not node_id:
            raise ValueError(f"node_id must be a non-empty str, got {node_id!r}")
        if not isinstance(soft, bool):
            raise TypeError(f"soft must be a bool, got {type(soft).__name__}")
        self.node_id = node_id
        self.soft = soft
        self._spill_on_unavailable = _spill_on_unavailable
        self._fail_on_unavailable = _fail_on_unavailable

    def _to_wire(self) -> list:
        return [NODE_AFFINITY, self.node_id, self.soft]

    def __repr__(self) -> str:
        return f"NodeAffinitySchedulingStrategy(node_id={self.node_id!r}, soft={self.soft})"
