"""Property tests of the journal: random step sequences, crashed (kill -9 of the real actor
process) at random points, keep the journal's invariants; and the step state machine
keeps its invariants under any sequence of begin/commit events."""
from __future__ import annotations

import os
import signal
import sys
import uuid

import cloudpickle
import lmdb
import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import actorium
from actorium import durable
from actorium.durable import journal_state as js

cloudpickle.register_pickle_by_value(sys.modules[__name__])

# -- the pure state machine ------------------------------------------------------------
events_strategy = st.lists(st.one_of(
    st.tuples(st.just("begin"), st.sampled_from(["a", "b"]), st.booleans()),
    st.tuples(st.just("commit"), st.booleans(), st.binary(max_size=4))), max_size=12)


@given(events_strategy)
def test_step_state_machine_invariants_hold_for_any_event_sequence(events):
    record = None
    for event in events:
        before = record
        if event[0] == "begin":
            _, name, idempotent = event
            action, new = js.begin(record, name, idempotent)
            if action is js.Action.RUN:
                assert js.state_of(before) is js.StepState.NONE or (
                    js.state_of(before) is js.StepState.INTENT and idempotent)
                assert new["attempts"] == (before["attempts"] + 1 if before else 1)
            else:
                assert new is None
            if action is js.Action.MISMATCH:
                assert before["name"] != name
            if action is js.Action.AMBIGUOUS:
                assert js.state_of(before) is js.StepState.INTENT and not idempotent
            record = new if new is not None else record
        else:
            _, ok, value = event
            if js.state_of(record) is js.StepState.NONE:
                with pytest.raises(js.InvalidStepTransition):
                    js.commit(record, ok, value)
                continue
            new = js.commit(record, ok, value)
            if js.state_of(before) is js.StepState.COMMITTED:
                assert new is None  # the first outcome wins, forever
            record = new if new is not None else record
        if before is not None:
            assert record["name"] == before["name"]


# -- real processes, real crashes ------------------------------------------------------
PHASES = ["before", "during", "after"]


def maybe_crash(marker_dir: str, step: int, phase: str, crashes: list) -> None:
    if [step, phase] in crashes or (step, phase) in crashes:
        marker = os.path.join(marker_dir, f"{step}-{phase}")
        if not os.path.exists(marker):
            open(marker, "w").close()
            os.kill(os.getpid(), signal.SIGKILL)


def effect(log: str, marker_dir: str, i: int, crashes: list) -> str:
    token = uuid.uuid4().hex[:8]
    with open(log, "a") as f:
        f.write(f"{i} {token}\n")
    maybe_crash(marker_dir, i, "during", crashes)
    return token


@actorium.remote(max_restarts=-1, checkpoint="auto")
class Runner:
    def run(self, plan, crashes, log, marker_dir):
        outcomes = []
        for i, idempotent in enumerate(plan):
            maybe_crash(marker_dir, i, "before", crashes)
            try:
                outcomes.append(durable.step(f"s{i}", effect, log, marker_dir, i, crashes,
                                             idempotent=idempotent))
            except durable.AmbiguousStep:
                outcomes.append("ambiguous")
            maybe_crash(marker_dir, i, "after", crashes)
        return outcomes


def journal_records(request_hex: str | None = None) -> list[dict]:
    """Every step record in the gcs's durable store, read from its LMDB environment."""
    from actorium.core import api
    path = os.path.join(api._session.info["session_dir"], "gcs", "durable")
    env = lmdb.open(path, readonly=True, lock=True, max_dbs=8, subdir=True)
    try:
        db = env.open_db(b"journal", create=False)
        with env.begin(db=db) as txn:
            return [(bytes(k), msgpack.unpackb(v, raw=False)) for k, v in txn.cursor()]
    finally:
        env.close()


@settings(max_examples=20, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(plan=st.lists(st.booleans(), min_size=1, max_size=4), data=st.data())
def test_random_crashes_keep_journal_invariants(shared_cluster, tmp_path_factory, plan, data):
    points = [(i, p) for i in range(len(plan)) for p in PHASES]
    crashes = data.draw(st.lists(st.sampled_from(points), unique=True, max_size=3))
    work = tmp_path_factory.mktemp("prop")
    log = str(work / "log")
    before = {k for k, _ in journal_records()}
    outcomes = actorium.get(Runner.remote().run.remote(
        plan, [list(c) for c in crashes], log, str(work)), timeout=120)
    assert len([p for p in work.iterdir() if p.name != "log"]) == len(crashes)  # all fired
    runs: dict[int, list[str]] = {}
    if os.path.exists(log):
        for line in open(log):
            i, token = line.split()
            runs.setdefault(int(i), []).append(token)
    records = [r for k, r in journal_records() if k not in before]
    assert [r["name"] for r in records] == [f"s{i}" for i in range(len(plan))]
    for i, idempotent in enumerate(plan):
        crashed_during = (i, "during") in crashes
        record, executions = records[i], runs.get(i, [])
        # at most once without idempotency; re-run once per cut-off attempt with it
        assert len(executions) == (2 if crashed_during and idempotent else 1)
        assert record["attempts"] == len(executions)
        if crashed_during and not idempotent:
            assert outcomes[i] == "ambiguous" and record["state"] == "intent"
        else:
            assert record["state"] == "committed" and record["ok"]
            # the answer is the journaled value of the run that committed
            assert outcomes[i] == executions[-1]
