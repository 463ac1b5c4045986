"""``actorium logs`` and ``start --head --dashboard-port`` against real detached clusters."""
from __future__ import annotations

import re
import urllib.error
import urllib.request

import pytest

from test_cli import env  # noqa: F401  (the fixture: a private ACTORIUM_TMPDIR, cleaned up)


CRASHER = """
    import os, sys, time, actorium
    actorium.init(address="auto")
    @actorium.remote(max_restarts=0)
    class Crasher:
        def work(self):
            print("working on order 17")
            print("warning: disk almost full", file=sys.stderr)
            sys.stdout.flush(); sys.stderr.flush()
            os.write(2, b"fatal: C-level write before the crash\\n")
            os._exit(3)
    c = Crasher.options(name="crasher", lifetime="detached").remote()
    try:
        actorium.get(c.work.remote(), timeout=30)
    except actorium.exceptions.ActorDiedError:
        print("DIED")
    @actorium.remote
    def chatty(tag):
        print("task says", tag)
        return actorium.get_runtime_context().get_task_id()
    print("TASK", actorium.get(chatty.remote("hello-from-a-task")))
"""


def test_logs_of_a_crashed_actor_and_of_a_task(env):
    env.start()
    out = env.driver(CRASHER)
    assert "DIED" in out.stdout, out.stdout + out.stderr
    logs = env.cli("logs", "--actor", "crasher")
    assert logs.returncode == 0, logs.stderr
    assert "working on order 17" in logs.stdout
    assert "warning: disk almost full" in logs.stdout
    assert "fatal: C-level write before the crash" in logs.stdout
    tail = env.cli("logs", "--actor", "crasher", "--tail", "1")
    assert tail.stdout.strip() == "fatal: C-level write before the crash"
    task_id = re.search(r"TASK (\S+)", out.stdout).group(1)
    task = env.cli("logs", "--task", task_id)
    assert task.returncode == 0, task.stderr
    assert task.stdout.strip() == "task says hello-from-a-task"
    listing = env.cli("logs")
    assert re.search(r"worker-[0-9a-f]+\.log", listing.stdout)
    missing = env.cli("logs", "--actor", "nobody-by-that-name")
    assert missing.returncode == 1 and "no actor" in missing.stderr


def test_logs_follow_prints_new_output(env):
    env.start()
    env.driver("""
        import actorium
        actorium.init(address="auto", namespace="logs")
        @actorium.remote
        class Talker:
            def say(self, text):
                print(text)
        t = Talker.options(name="talker", lifetime="detached").remote()
        actorium.get(t.say.remote("first line"))
    """)
    import subprocess
    import sys
    follow = subprocess.Popen([sys.executable, "-m", "actorium.cli", "logs", "--actor",
                               "talker", "--follow", "--follow-for", "8"], env=env.env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        env.driver("""
            import time, actorium
            actorium.init(address="auto", namespace="logs")
            time.sleep(1)
            actorium.get(actorium.get_actor("talker").say.remote("second line"))
        """)
        out, err = follow.communicate(timeout=30)  # it stops after --follow-for 8 s
    finally:
        if follow.poll() is None:
            follow.kill()
            follow.wait(5)
    assert "first line" in out and "second line" in out, out + err


def test_start_head_with_a_dashboard_port_serves_it_behind_the_token(env):
    cur = env.start("--dashboard-port", "0")
    url = cur["dashboard_url"]
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(url + "/metrics", timeout=10)
    assert refused.value.code == 401
    with open(env.token_file) as f:
        token = f.read().strip()
    req = urllib.request.Request(url + "/metrics", headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, timeout=10) as r:
        assert b"actorium_actors" in r.read()
    got = env.driver("""
        import actorium
        actorium.init(address="auto")
        print("URL", actorium.dashboard_url())
    """)
    assert f"URL {url}" in got.stdout, got.stdout + got.stderr
    pid = cur["dashboard_pid"]
    assert env.cli("stop").returncode == 0
    import psutil
    assert psutil.wait_procs([psutil.Process(pid)], timeout=10)[1] == [] \
        if psutil.pid_exists(pid) else True
