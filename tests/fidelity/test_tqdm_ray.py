"""``actorium.experimental.tqdm_ray.tqdm``: bars made in tasks and actors are drawn in
the driver, one per tqdm, labelled with its name; their output lines are not printed."""
from __future__ import annotations

import pytest

import actorium
from actorium.experimental import tqdm_ray


@actorium.remote
def download(name, n):
    for _ in tqdm_ray.tqdm(range(n), desc=name, flush_interval_s=0):
        pass
    return name


@actorium.remote
class Crawler:
    def crawl(self, n):
        bar = tqdm_ray.tqdm(desc="crawl", total=n, unit="page")
        for _ in range(n):
            bar.update(1)
        bar.close()


def _finished(name, n):
    return lambda bars: any(b["desc"] == name and b["closed"] and b["n"] == n for b in bars)


def test_bars_of_two_tasks_are_drawn_in_the_driver_one_per_name(shared_cluster, capfd):
    actorium.get([download.remote("alpha", 3), download.remote("beta", 5)], timeout=30)
    manager = tqdm_ray.instance()
    assert manager.wait_for(_finished("alpha", 3), timeout=30)
    assert manager.wait_for(_finished("beta", 5), timeout=30)
    names = {b["desc"] for b in manager.bars() if b["desc"] in ("alpha", "beta")}
    assert names == {"alpha", "beta"}
    err = capfd.readouterr()
    assert "alpha: 100%" in err.err and "beta: 100%" in err.err
    assert tqdm_ray._MARKER not in err.out + err.err  # taken out of the printed output


def test_an_actor_bar_counts_every_update(shared_cluster):
    c = Crawler.remote()
    actorium.get(c.crawl.remote(50), timeout=30)
    # updates are throttled, but the close always carries the final count
    assert tqdm_ray.instance().wait_for(_finished("crawl", 50), timeout=30)
    bar = [b for b in tqdm_ray.instance().bars() if b["desc"] == "crawl"][-1]
    assert (bar["total"], bar["unit"]) == (50, "page")


def test_a_driver_bar_is_drawn_without_a_cluster_round_trip():
    with tqdm_ray.tqdm(desc="local", total=2) as bar:
        bar.update(2)
    assert _finished("local", 2)(tqdm_ray.instance().bars())


def test_tqdm_without_an_iterable_cannot_be_iterated():
    bar = tqdm_ray.tqdm(desc="empty")
    with pytest.raises(ValueError, match="without an iterable"):
        iter(bar).__next__()
    bar.close()
