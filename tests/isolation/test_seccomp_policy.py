"""Unit tests that need no sandbox: the seccomp program, the policy, the backend registry."""
import os
import re

import pytest

from actorium.isolation import seccomp
from actorium.isolation.policy import SandboxPolicy, parse_size

HDR = "/usr/include/x86_64-linux-gnu/asm/unistd_64.h"


@pytest.mark.skipif(not os.path.exists(HDR), reason="kernel headers not installed")
def test_x86_64_syscall_numbers_match_kernel_headers():
    table = dict((n, int(v)) for n, v in re.findall(r"#define __NR_(\w+) (\d+)", open(HDR).read()))
    mine = seccomp.syscall_numbers("x86_64")
    assert {k: v for k, v in mine.items() if table.get(k) != v} == {}


@pytest.mark.parametrize("arch", ["x86_64", "aarch64"])
def test_program_assembles_for_each_arch(arch):
    prog = seccomp.build_program(arch=arch)
    assert 20 < len(prog) < 255
    assert all(0 <= jt < 256 and 0 <= jf < 256 for _, jt, jf, _ in prog)
    assert prog[-1] == (0x06, 0, 0, seccomp.RET_KILL_PROCESS)  # foreign arch: kill


def test_every_denied_name_is_known_on_x86_64():
    nrs = seccomp.syscall_numbers("x86_64")
    assert [n for n in seccomp.DENIED_SYSCALLS if n not in nrs] == []


def test_extra_denied_accepts_names_and_numbers():
    base = len(seccomp.build_program(arch="x86_64"))
    assert len(seccomp.build_program(["kcmp", 9998, 9999], arch="x86_64")) == base + 2
    with pytest.raises(ValueError):
        seccomp.build_program(["no_such_syscall"], arch="x86_64")


def test_program_bytes_is_sock_filter_array():
    assert len(seccomp.program_bytes()) == 8 * len(seccomp.build_program())


@pytest.mark.parametrize("text,expected", [
    ("256MiB", 256 << 20), ("1GiB", 1 << 30), ("64KiB", 64 << 10), ("1.5GiB", 3 << 29),
    ("1000", 1000), (512, 512), ("10MB", 10_000_000)])
def test_parse_size(text, expected):
    assert parse_size(text) == expected


@pytest.mark.parametrize("kwargs,needle", [
    (dict(memory="lots"), "memory"), (dict(memory="1MiB"), "16MiB"),
    (dict(cpu_seconds=-1), "cpu_seconds"), (dict(wall_seconds=0), "wall_seconds"),
    (dict(network="yes"), "network"), (dict(files={"data.csv": b""}), "absolute"),
    (dict(files={"/tmp/x": b""}), "/tmp"), (dict(files={"/data/x": "text"}), "bytes"),
    (dict(files={"/proc/x": b""}), "reserved"), (dict(max_processes=0), "max_processes"),
    (dict(allowed_paths="/usr"), "tuple"), (dict(env={"LD_PRELOAD": "x"}), "not allowed"),
    (dict(env={"PYTHONPATH": "/x"}), "not allowed"), (dict(env={"A B": "x"}), "invalid"),
    (dict(max_output_bytes=0), "positive"), (dict(tmp_size="-1"), "tmp_size"),
])
def test_policy_validation_errors_are_clear(kwargs, needle):
    with pytest.raises(ValueError, match=needle):
        SandboxPolicy(**kwargs)


def test_policy_is_frozen_and_normalised():
    p = SandboxPolicy(memory="1GiB", files={"/data//in.csv": b"x"}, env={"MODE": "fast"})
    assert p.memory == 1 << 30 and list(p.files) == ["/data/in.csv"]
    with pytest.raises(Exception):
        p.memory = 1
    with pytest.raises(TypeError):
        p.files["/x"] = b""  # read-only mapping
    assert hash(p) == hash(SandboxPolicy(memory="1GiB", files={"/data/in.csv": b"x"},
                                         env={"MODE": "fast"}))


def test_unknown_backend_is_refused():
    with pytest.raises(ValueError, match="backend"):
        SandboxPolicy(backend="docker")


def test_bwrap_backend_without_bwrap_on_path_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(ValueError, match="bubblewrap"):
        SandboxPolicy(backend="bwrap")


@pytest.mark.jail
def test_cgroups_left_by_a_killed_creator_are_swept():
    from actorium.isolation.cgroups import CGROUP_ROOT, _own_cgroup, creator_tag, sweep_orphans
    rel = _own_cgroup("pids")
    if os.geteuid() != 0 or rel is None:
        pytest.skip("needs a writable pids cgroup")
    parent = os.path.join(CGROUP_ROOT, "pids" + rel.rstrip("/"), "actorium")
    os.makedirs(parent, exist_ok=True)
    dead = os.path.join(parent, "spare-999999-dead01")       # no such pid
    alive = os.path.join(parent, f"sbx-{creator_tag()}-0-live01")  # its creator lives
    # a creator in another pid namespace (another contained run, a container): its pid
    # means nothing in our /proc, so its cgroups are left to its own sweep
    foreign = os.path.join(parent, "sbx-999999.1-0-other01")
    for d in (dead, alive, foreign):
        os.mkdir(d)
    try:
        sweep_orphans()
        assert not os.path.exists(dead) and os.path.exists(alive) and os.path.exists(foreign)
    finally:
        for d in (dead, alive, foreign, parent):
            try:
                os.rmdir(d)
            except OSError:
                pass
