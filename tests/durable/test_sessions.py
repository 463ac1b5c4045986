"""actorium.session: one live actor per key from any driver, an event log of every call,
parking (no process, state kept) and waking on the next call."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import cloudpickle
import pytest

import actorium
from actorium import durable

cloudpickle.register_pickle_by_value(sys.modules[__name__])


class Chat:
    """A plain class: actorium.session makes it a durable actor."""

    def __init__(self, user):
        self.user = user
        self.said = []

    def say(self, text, crash_marker=""):
        reply = durable.step("think", lambda: f"{self.user} said {text}")
        if crash_marker and not os.path.exists(crash_marker):
            open(crash_marker, "w").close()
            os.kill(os.getpid(), signal.SIGKILL)
        self.said.append(text)
        return reply

    def history(self):
        return self.said

    def pid(self):
        return os.getpid()


def test_the_same_key_reaches_the_same_live_actor(shared_cluster):
    a = actorium.session("s-same", Chat, "ann")
    b = actorium.session("s-same", Chat, "someone else")  # existing actor: args unused
    actorium.get(a.say.remote("hi"), timeout=30)
    assert actorium.get(b.history.remote(), timeout=30) == ["hi"]
    assert a.actor.actor_id == b.actor.actor_id


def test_the_event_log_holds_each_request_step_and_result_once_after_a_crash(
        shared_cluster, tmp_path):
    s = actorium.session("s-log", Chat, "bob")
    assert actorium.get(s.say.remote("yo", str(tmp_path / "m")), timeout=60) == "bob said yo"
    kinds = [(e["kind"], e.get("name", e.get("method"))) for e in durable.events("s-log")]
    assert kinds == [("request", "say"), ("step", "think"), ("result", "say")]
    assert s.events(start=2) == durable.events("s-log", start=2)


def test_a_parked_session_has_no_process_and_wakes_with_its_state(shared_cluster):
    s = actorium.session("s-park", Chat, "cy")
    actorium.get(s.say.remote("one"), timeout=30)
    pid = actorium.get(s.pid.remote(), timeout=30)
    s.park()
    from tests_helpers import wait_until
    assert wait_until(lambda: not _alive(pid), timeout=10)
    assert actorium.get(s.say.remote("two"), timeout=60) == "cy said two"
    assert actorium.get(s.history.remote(), timeout=30) == ["one", "two"]
    assert actorium.get(s.pid.remote(), timeout=30) != pid


def test_a_session_is_reachable_from_another_driver(shared_cluster):
    s = actorium.session("s-shared", Chat, "dee")
    actorium.get(s.say.remote("from one"), timeout=30)
    address = actorium.init(ignore_reinit_error=True)["address"]
    code = textwrap.dedent(f"""
        import actorium
        from actorium import durable
        actorium.init(address={address!r})
        class Chat:  # only the name of the session matters to reach it
            pass
        s = actorium.session("s-shared", Chat)
        print("HISTORY", actorium.get(s.history.remote(), timeout=30))
        print("EVENTS", len(durable.events("s-shared")))
        actorium.shutdown()
    """)
    # The embedded cluster's token lives only in this driver: hand it to the other one.
    from actorium.core.wire import auth
    env = dict(os.environ, ACTORIUM_TOKEN=auth.process_token().value)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, env=env)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "HISTORY ['from one']" in out.stdout
    assert "EVENTS 5" in out.stdout  # say: request, step, result; history: request, result


def test_bad_session_arguments_are_clear_errors(shared_cluster):
    with pytest.raises(TypeError, match="non-empty str"):
        actorium.session("", Chat)
    with pytest.raises(TypeError, match="must be a class"):
        actorium.session("k", "Chat")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    import psutil
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False



def test_a_session_handle_passed_to_a_task_reaches_the_same_actor(shared_cluster):
    s = actorium.session("s-passed", Chat, "eve")

    @actorium.remote
    def speak(session):
        return actorium.get(session.say.remote("from a task"), timeout=30)

    assert actorium.get(speak.remote(s), timeout=60) == "eve said from a task"
    assert actorium.get(s.history.remote(), timeout=30) == ["from a task"]
