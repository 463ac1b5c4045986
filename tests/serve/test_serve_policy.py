"""The scaling policy as a pure function of load samples and the clock."""
from __future__ import annotations

from actorium.serve.policy import LoadHistory, wanted_replicas

KNOBS = dict(min_replicas=0, max_replicas=8, target=2.0, idle_timeout_s=10.0)


def _feed(history, start, end, load, step=0.1):
    t = start
    while t < end:
        history.add(t, load, load)
        t += step
    return t


def test_waiting_request_with_no_replica_asks_for_one():
    assert wanted_replicas(LoadHistory(), 0.0, 0, waiting=True, **KNOBS) == 1


def test_no_load_and_no_replica_stays_at_zero():
    assert wanted_replicas(LoadHistory(), 0.0, 0, waiting=False, **KNOBS) == 0


def test_mean_load_above_target_scales_up_to_load_over_target():
    h = LoadHistory()
    now = _feed(h, 0.0, 1.0, 9.0)
    assert wanted_replicas(h, now, 2, waiting=False, **KNOBS) == 5  # ceil(9 / 2)


def test_scale_up_is_bounded_by_max_replicas():
    h = LoadHistory()
    now = _feed(h, 0.0, 1.0, 100.0)
    assert wanted_replicas(h, now, 2, waiting=False, **KNOBS) == 8


def test_load_at_target_keeps_the_count():
    h = LoadHistory()
    now = _feed(h, 0.0, 1.0, 4.0)
    assert wanted_replicas(h, now, 2, waiting=False, **KNOBS) == 2


def test_a_lull_shorter_than_idle_timeout_does_not_scale_down():
    h = LoadHistory()
    t = _feed(h, 0.0, 2.0, 8.0)
    now = _feed(h, t, t + 5.0, 0.0)
    assert wanted_replicas(h, now, 4, waiting=False, **KNOBS) == 4


def test_idle_timeout_without_requests_scales_to_min_replicas():
    h = LoadHistory()
    t = _feed(h, 0.0, 2.0, 8.0)
    now = _feed(h, t, t + 10.5, 0.0)
    assert wanted_replicas(h, now, 4, waiting=False, **KNOBS) == 0
    assert wanted_replicas(h, now, 4, waiting=False, **{**KNOBS, "min_replicas": 1}) == 1


def test_lower_load_for_idle_timeout_scales_down_to_what_it_needs():
    h = LoadHistory()
    t = _feed(h, 0.0, 2.0, 8.0)
    now = _feed(h, t, t + 10.5, 3.0)
    assert wanted_replicas(h, now, 4, waiting=False, **KNOBS) == 2  # ceil(3 / 2)


def test_short_peaks_count_for_scale_down():
    h = LoadHistory()
    t = _feed(h, 0.0, 5.0, 0.0)
    h.add(t, 0.0, 6.0)  # a burst between two samples, seen as a router's peak
    now = _feed(h, t + 0.1, t + 2.0, 0.0)
    assert wanted_replicas(h, now, 4, waiting=False, **KNOBS) == 3
