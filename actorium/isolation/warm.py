"""Pre-started jails: a jail set up before its request arrives, waiting for its job.

Most of a sandbox's start-up is building the jail (namespaces, root filesystem, cgroup,
seccomp: ~8 ms here); running "1+1" takes well under a millisecond. So the zygote keeps a
few *spare* jails of the policy it saw last (``service``): each is a handler child that
forked from the clean zygote, built a jail with that policy, and waits. When a request
with the same policy arrives, the zygote hands it to a spare and only the job itself
runs on the request's clock.

Invariants
----------
* A spare is fresh: it was forked from the zygote before the request it serves existed
  and has run nothing; it serves exactly one request and then ends like any sandbox.
* The request's wall-time limit starts when the job is handed to the jail, not when the
  spare was built; ``duration`` is measured from the same moment. Limits the parent
  enforces (wall time, output size) come from the request's policy; everything that
  shapes the jail itself (memory, CPU, files, network...) must match the spare's.
* An idle spare's cgroup is named ``spare-*``; it is renamed like any sandbox's
  (``sbx-*``) when the spare takes its request, so tools (and the test suite's leftover
  checks) can tell idle spares from sandboxes that run or were left behind.
* A spare whose request channel closes without a request (zygote shutting down, policy
  changed) ends its jail and exits without reporting.
"""
from __future__ import annotations

import os
import select
import time

import msgpack

from . import calls, codec
from .calls import job_body, plain_details, read_all, snippet_fields
from .cgroups import creator_tag
from .runner import _collect, _result, run_jailed, write_all

__all__ = ["serve_spare", "SparePool", "SPARE_PREFIX", "SPARES"]

SPARE_PREFIX = "spare-"  # cgroup name of a jail still waiting for its request


def serve_spare(policy_dict: dict, req_fd: int, report_fd: int) -> None:
    """In a handler child: build a jail, wait for a request on ``req_fd``, serve it and
    write the report (as ``service._handler`` does) to ``report_fd``."""
    from .channel import policy_from_dict
    policy = policy_from_dict(policy_dict)
    job_r, job_w = os.pipe2(os.O_CLOEXEC)
    state: dict = {}

    def body(res_fd: int) -> int:
        return job_body(job_r, res_fd)
    body.job = {"kind": "warm", "job_fd": job_r}

    def collect(col, names, _deadline):
        req = _wait_request(req_fd)
        if req is None:
            os.close(job_w)  # EOF: the jail exits without running anything
            _collect(col, names, time.monotonic() + 2.0)
            return
        state["req"], state["start"] = req, time.monotonic()
        # the parent-enforced limits (wall time, output) are the request's own
        col.policy = state["policy"] = policy_from_dict(req.get("policy") or policy_dict)
        if col.cgroup is not None:  # no longer a spare: an ordinary running sandbox
            _await_setup(col, names)  # the jail joins its cgroup by path: not mid-rename
            col.cgroup.rename(f"sbx-{creator_tag()}-{os.urandom(3).hex()}")
        if req.get("op") == "call":
            job = {"kind": "call", "payload": req["payload"]}
        else:
            blob = req.get("inputs") or codec.encode({})
            job = {"kind": "snippet", "code": req["code"], "inputs": blob}
        try:
            write_all(job_w, msgpack.packb(job, use_bin_type=True))
        finally:
            os.close(job_w)
        _collect(col, names, state["start"] + col.policy.wall_seconds)

    col, stats, _ = run_jailed(body, policy, {"job": (job_w, job_r)}, collect,
                               cgroup_name=f"{SPARE_PREFIX}{creator_tag()}-{os.urandom(3).hex()}")
    req = state.get("req")
    if req is None:
        return
    duration = time.monotonic() - state["start"]
    policy = state["policy"]
    try:
        if req.get("op") == "call":
            result = calls.call_result(col, stats, policy, duration)
            result["details"] = plain_details(result["details"])
        else:
            result = snippet_fields(_result(col, stats, policy, duration))
        result["details"]["warm"] = True
        out = {"ok": True, "result": result}
    except Exception as exc:
        out = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    write_all(report_fd, msgpack.packb(out, use_bin_type=True))


def _await_setup(col, names: dict, timeout: float = 5.0) -> None:
    """Wait until the jail reported its setup (it is in its cgroup by then)."""
    fd = next(fd for fd, name in names.items() if name == "setup")
    deadline = time.monotonic() + timeout
    while not col.bufs.get("setup") and time.monotonic() < deadline:
        if select.select([fd], [], [], max(0.0, deadline - time.monotonic()))[0]:
            data = os.read(fd, 8192)
            if not data:
                return
            col.feed("setup", data)


def _wait_request(req_fd: int) -> dict | None:
    """Block until the zygote hands over a request (or closes the channel)."""
    select.select([req_fd], [], [])
    data = read_all(req_fd, 1 << 30)
    if not data:
        return None
    try:
        req = msgpack.unpackb(data, raw=False)
    except Exception:
        return None
    return req if isinstance(req, dict) else None


SPARES = 2           # pre-started jails kept for the policy of the last request (``warm``)
PER_REQUEST = ("wall_seconds", "max_output_bytes")  # enforced by the parent, per request


class SparePool:
    """The zygote's pre-started jails, for the policy the last run or call used.

    A request with that policy is handed to a spare; one with another policy retires the
    spares (closing their request pipes ends them) and the pool follows the new policy."""

    def __init__(self):
        self.key: bytes | None = None
        self.policy: dict | None = None
        self.spares: list[tuple[int, int, int]] = []  # (pid, request w fd, report r fd)

    def fds(self) -> list[int]:
        return [fd for _pid, req_w, rep_r in self.spares for fd in (req_w, rep_r)]

    def take(self, msg) -> tuple[int, int, int] | None:
        policy = msg.get("policy") or {}
        # limits the parent enforces per request do not shape the jail: not in the key
        key = msgpack.packb({k: v for k, v in policy.items() if k not in PER_REQUEST},
                            use_bin_type=True)
        if key != self.key:
            self.retire()
            self.key, self.policy = key, policy
            return None
        return self.spares.pop(0) if self.spares else None

    def retire(self) -> None:
        for _pid, req_w, rep_r in self.spares:
            os.close(req_w)
            os.close(rep_r)
        self.spares.clear()

    def forget(self, pid: int) -> None:
        """A spare that died before it was used (reaped by the zygote loop)."""
        for spare in self.spares:
            if spare[0] == pid:
                self.spares.remove(spare)
                os.close(spare[1])
                os.close(spare[2])
                return
