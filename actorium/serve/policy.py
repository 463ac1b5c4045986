"""The scaling policy: how many replicas a deployment wants, from its measured load.

Pure: fed load samples and the clock, it returns a replica count; the controller does
the starting and draining. Load is what the routers report: requests in flight at
replicas plus requests queued in routers (summed over every router of the cluster).

- Up: when the mean load per replica over the last ``UP_WINDOW_S`` exceeds
  ``target_ongoing_requests``, the wanted count is ``ceil(mean load / target)``; a
  request waiting while no replica exists asks for one at once (cold start).
- Down: the count never drops below ``ceil(peak / target)`` where ``peak`` is the
  highest load seen in the last ``idle_timeout_s``; so after ``idle_timeout_s`` without
  requests it reaches ``min_replicas`` (0 allowed), and a short lull does not shrink it.
- Always within ``[min_replicas, max_replicas]``.
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

UP_WINDOW_S = 0.3


@dataclass(slots=True)
class LoadHistory:
    """(time, load, peak) samples of one deployment, oldest first."""
    samples: deque = field(default_factory=deque)

    def add(self, now: float, load: float, peak: float) -> None:
        self.samples.append((now, load, max(load, peak)))

    def trim(self, now: float, keep_s: float) -> None:
        while self.samples and self.samples[0][0] < now - keep_s:
            self.samples.popleft()

    def mean_load(self, now: float, window_s: float) -> float:
        recent = [load for t, load, _ in self.samples if t >= now - window_s]
        return sum(recent) / len(recent) if recent else 0.0

    def peak(self, now: float, window_s: float) -> float:
        return max((p for t, _, p in self.samples if t >= now - window_s), default=0.0)


def wanted_replicas(history: LoadHistory, now: float, current: int, *, min_replicas: int,
                    max_replicas: int, target: float, idle_timeout_s: float,
                    waiting: bool) -> int:
    """The replica count the deployment should have now. ``current`` counts replicas
    running or starting; ``waiting`` is whether a request waits for a replica."""
    history.trim(now, max(idle_timeout_s, UP_WINDOW_S) + 1.0)
    mean = history.mean_load(now, UP_WINDOW_S)
    up = current
    if current == 0:
        up = math.ceil(mean / target) if mean > 0 else 0
        if waiting:
            up = max(up, 1)
    elif mean / current > target:
        up = math.ceil(mean / target)
    if up > current:
        want = up
    else:
        # The peak over the idle window: no shrinking below what recent load needed.
        want = min(current, math.ceil(history.peak(now, idle_timeout_s) / target))
    return max(min_replicas, min(max_replicas, want))
