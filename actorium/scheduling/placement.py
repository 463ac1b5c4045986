"""Choosing a node for a resource shape: the one policy used by raylets (spillback of
lease requests) and by the gcs (actor placement), over a view of the cluster's nodes.

Strategies, as in Ray: ``None`` (default: stay local while the shape fits here, else
the least loaded node where it fits now, else wherever it is feasible), ``"SPREAD"``
(round robin over the nodes where it fits) and ``["NODE_AFFINITY", node_id, soft]``
(that node; if it is gone or can never hold the shape: an error, or the default when
``soft``).
"""
from __future__ import annotations

from actorium.scheduling import resources as res

SPREAD = "SPREAD"
NODE_AFFINITY = "NODE_AFFINITY"


class Unschedulable(Exception):
    """The strategy names a node that cannot run this work, and is not soft."""


def strategy_key(strategy) -> tuple:
    """A hashable form, so work of different strategies queues separately."""
    if strategy is None or strategy == "DEFAULT":
        return ()
    if isinstance(strategy, str):
        return (strategy,)
    return tuple(strategy)


def normalize(strategy):
    """User-facing strategy objects to their wire form (None, "SPREAD" or a list)."""
    if strategy is None or strategy == "DEFAULT":
        return None
    if strategy == SPREAD:
        return SPREAD
    to_wire = getattr(strategy, "_to_wire", None)
    if to_wire is not None:
        return to_wire()
    if isinstance(strategy, (list, tuple)) and strategy and strategy[0] == NODE_AFFINITY:
        return [NODE_AFFINITY, str(strategy[1]), bool(strategy[2])]
    raise ValueError(f"scheduling_strategy must be None, 'DEFAULT', 'SPREAD' or a "
                     f"NodeAffinitySchedulingStrategy, got {strategy!r}")


def _load(available: dict, total: dict) -> float:
    cpu = total.get("CPU", 0.0)
    return 1.0 - (available.get("CPU", 0.0) / cpu if cpu else 1.0)


def choose(shape: dict, strategy, view: dict, local: str | None, turn: int = 0) -> str | None:
    """The node id to run ``shape`` on, or None when no node can ever hold it.

    ``view`` maps node id -> (total, available) of live nodes; ``local`` is the asking
    raylet's node (None for the gcs). Raises Unschedulable for a hard affinity that
    cannot be met."""
    if strategy and not isinstance(strategy, str) and strategy[0] == NODE_AFFINITY:
        target, soft = strategy[1], bool(strategy[2])
        entry = view.get(target)
        if entry is not None and res.feasible(shape, entry[0]):
            return target
        if not soft:
            why = "is not alive" if entry is None else f"has only {entry[0]}"
            raise Unschedulable(f"NodeAffinitySchedulingStrategy(soft=False) names node "
                                f"{target}, which {why}; the work needs {shape}.")
        strategy = None
    feasible = sorted(n for n, (total, _a) in view.items() if res.feasible(shape, total))
    if not feasible:
        return None
    fitting = [n for n in feasible if res.fits(shape, view[n][1])]
    if strategy == SPREAD:
        pool = fitting or feasible
        return pool[turn % len(pool)]
    if local is not None and local in fitting:
        return local
    if fitting:
        return min(fitting, key=lambda n: (_load(view[n][1], view[n][0]), n))
    if local is not None and local in feasible:
        return local
    return feasible[0]
