"""What the autoscaler does next, as a pure function of what the gcs reports.

* **Up**: a pending shape (an actor placed nowhere, a lease request or actor queued at a
  raylet) is *unmet* when it fits the availability of no live, undrained node — after
  the earlier pending shapes have taken their room. Unmet shapes that one new node can
  hold are packed first-fit into as many new nodes as they need; that many are created,
  up to ``max_nodes``. Unmet shapes no new node could ever hold are reported, not
  scaled for. Demand must be unmet on two polls in a row, because the heartbeats
  that carry it lag by up to one period (a node that just joined is not yet used).
* **Down**: a node this autoscaler created, idle (no leased or actor workers, nothing
  queued) for ``idle_timeout`` seconds, is drained and terminated while more than
  ``min_nodes`` remain. The head and nodes started by others are never removed.
* **Floor**: fewer than ``min_nodes`` managed nodes: create the difference.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from actorium.scheduling import resources as res


@dataclass
class Config:
    min_nodes: int = 0
    max_nodes: int = 1
    idle_timeout: float = 60.0
    poll_period: float = 0.5

    def __post_init__(self):
        if self.min_nodes < 0 or self.max_nodes < self.min_nodes:
            raise ValueError(f"need 0 <= min_nodes <= max_nodes, got min_nodes="
                             f"{self.min_nodes}, max_nodes={self.max_nodes}")
        if self.idle_timeout < 0:
            raise ValueError(f"idle_timeout must be >= 0, got {self.idle_timeout}")


@dataclass
class Plan:
    launch: int = 0
    terminate: list = field(default_factory=list)  # node ids
    reasons: list = field(default_factory=list)    # one line per decision
    unmet: list = field(default_factory=list)      # shapes no node holds now
    infeasible: list = field(default_factory=list)  # shapes no new node could hold


def unmet_demand(demand: dict) -> list[dict]:
    room = {n["node_id"]: dict(n["available"]) for n in demand["nodes"]
            if not n["draining"]}
    unmet = []
    for shape in demand["pending"]:
        target = next((nid for nid, avail in room.items() if res.fits(shape, avail)), None)
        if target is None:
            unmet.append(shape)
        else:
            res.subtract(room[target], shape)
    return unmet


def decide(demand: dict, managed: set, node_type: dict, cfg: Config,
           previous_unmet: int) -> Plan:
    plan = Plan()
    plan.unmet = unmet_demand(demand)
    bins: list[dict] = []
    for shape in plan.unmet:
        if not res.feasible(shape, node_type):
            plan.infeasible.append(shape)
            continue
        home = next((b for b in bins if res.fits(shape, b)), None)
        if home is None:
            home = dict(node_type)
            bins.append(home)
        res.subtract(home, shape)
    room = cfg.max_nodes - len(managed)
    if bins and previous_unmet:
        plan.launch = min(len(bins), room)
        if plan.launch:
            plan.reasons.append(f"up: {len(plan.unmet)} pending shape(s) fit no node "
                                f"(e.g. {plan.unmet[0]}); adding {plan.launch} node(s)")
        else:
            plan.reasons.append(f"at max_nodes={cfg.max_nodes}: {len(plan.unmet)} "
                                f"pending shape(s) wait")
    if len(managed) + plan.launch < cfg.min_nodes:
        extra = cfg.min_nodes - len(managed) - plan.launch
        plan.launch += extra
        plan.reasons.append(f"up: {extra} node(s) to reach min_nodes={cfg.min_nodes}")
    if plan.infeasible:
        plan.reasons.append(f"{len(plan.infeasible)} pending shape(s) need more than a "
                            f"new node offers ({node_type}), e.g. {plan.infeasible[0]}")
    if plan.launch or bins:
        return plan  # never shrink while growing
    keep = len(managed)
    for n in sorted(demand["nodes"], key=lambda n: -n["idle_for"]):
        if n["node_id"] in managed and keep > cfg.min_nodes and \
                n["idle_for"] >= cfg.idle_timeout and not n["busy"] and not n["pending"]:
            plan.terminate.append(n["node_id"])
            plan.reasons.append(f"down: node {n['node_id'][:12]} idle for "
                                f"{n['idle_for']:.0f}s (timeout {cfg.idle_timeout:g}s)")
            keep -= 1
    return plan
