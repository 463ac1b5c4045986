"""Escape suite, part 2: other processes and the kernel's risky surfaces.

Every denied syscall must fail with the expected errno *inside* the sandbox (an ordinary
OSError for the snippet, not a violation), asserted from outside.
"""
import errno
import os
import signal
import subprocess
import time

import pytest

from actorium.isolation import seccomp
from isolation_helpers import SYSCALL_PRELUDE, ok, run

pytestmark = pytest.mark.jail

NR = seccomp.syscall_numbers("x86_64")
CLONE_NEWUSER, SIGCHLD = 0x10000000, 17

# name -> (args, expected errno).  Arguments are chosen so that, were the call allowed,
# it would succeed or fail with a *different* errno than the filter's.
DENIED = {
    "ptrace": ((16, "PPID", 0, 0), errno.EPERM),           # PTRACE_ATTACH to parent
    "process_vm_readv": (("PPID", 0, 0, 0, 0, 0), errno.EPERM),
    "kcmp": ((1, 1, 0, 0, 0), errno.EPERM),
    "perf_event_open": ((0, 0, -1, -1, 0), errno.EPERM),
    "bpf": ((0, 0, 0), errno.EPERM),
    "userfaultfd": ((0,), errno.EPERM),
    "keyctl": ((0, 0, 0), errno.EPERM),                     # KEYCTL_GET_KEYRING_ID
    "add_key": ((0, 0, 0, 0, 0), errno.EPERM),
    "request_key": ((0, 0, 0, 0), errno.EPERM),
    "init_module": ((0, 0, 0), errno.EPERM),
    "finit_module": ((0, 0, 0), errno.EPERM),
    "delete_module": ((0, 0), errno.EPERM),
    "kexec_load": ((0, 0, 0, 0), errno.EPERM),
    "kexec_file_load": ((0, 0, 0, 0, 0), errno.EPERM),
    "mount": ((0, 0, 0, 0, 0), errno.EPERM),
    "umount2": ((0, 0), errno.EPERM),
    "pivot_root": ((0, 0), errno.EPERM),
    "chroot": ((0,), errno.EPERM),
    "open_tree": ((-100, 0, 0), errno.EPERM),
    "move_mount": ((0, 0, 0, 0, 0), errno.EPERM),
    "fsopen": ((0, 0), errno.EPERM),
    "fsconfig": ((0, 0, 0, 0, 0), errno.EPERM),
    "fsmount": ((0, 0, 0), errno.EPERM),
    "fspick": ((0, 0, 0), errno.EPERM),
    "mount_setattr": ((0, 0, 0, 0, 0), errno.EPERM),
    "unshare": ((CLONE_NEWUSER,), errno.EPERM),
    "setns": ((0, 0), errno.EPERM),
    "clone3": ((0, 0), errno.ENOSYS),
    "clone": ((CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0), errno.EPERM),
    "io_uring_setup": ((1, 0), errno.EPERM),
    "io_uring_enter": ((0, 0, 0, 0, 0, 0), errno.EPERM),
    "io_uring_register": ((0, 0, 0, 0), errno.EPERM),
    "personality": ((0x0040000,), errno.EPERM),             # ADDR_NO_RANDOMIZE
    "reboot": ((0, 0, 0, 0), errno.EPERM),
    "swapon": ((0, 0), errno.EPERM),
    "swapoff": ((0,), errno.EPERM),
    "acct": ((0,), errno.EPERM),
    "settimeofday": ((0, 0), errno.EPERM),
    "clock_settime": ((0, 0), errno.EPERM),
    "adjtimex": ((0,), errno.EPERM),
    "syslog": ((3, 0, 0), errno.EPERM),
    "quotactl": ((0, 0, 0, 0), errno.EPERM),
    "lookup_dcookie": ((0, 0, 0), errno.EPERM),
    "name_to_handle_at": ((-100, 0, 0, 0, 0), errno.EPERM),
    "open_by_handle_at": ((-100, 0, 0), errno.EPERM),
    "iopl": ((3,), errno.EPERM),
    "ioperm": ((0, 1, 1), errno.EPERM),
    "vhangup": ((), errno.EPERM),
    "nfsservctl": ((0, 0, 0), errno.EPERM),
    "pidfd_getfd": ((0, 0, 0), errno.EPERM),
}


@pytest.mark.parametrize("name", sorted(DENIED))
def test_syscall_is_denied(name):
    args, want = DENIED[name]
    args = tuple(os.getpid() if a == "PPID" else a for a in args)
    r = ok(SYSCALL_PRELUDE + f"sc({NR[name]}, *{args!r})")
    ret, err = r.value
    assert (ret, err) == (-1, want), f"{name}: got ret={ret} errno={errno.errorcode.get(err, err)}"


def test_x32_syscall_is_denied():
    r = ok(SYSCALL_PRELUDE + "(sc(0x40000000 | 39), sc(39))")  # x32 getpid, then getpid
    assert r.value == ((-1, errno.EPERM), (1, 0))


def test_tiocsti_is_denied():
    r = ok(SYSCALL_PRELUDE + """
buf = ctypes.c_char(b'x')
res = []
for fd in (0, 1, 2):
    ctypes.set_errno(0)
    res.append((_libc.ioctl(fd, 0x5412, ctypes.byref(buf)), ctypes.get_errno()))
res
""")
    assert all(v == (-1, errno.EPERM) for v in r.value), r.value


def test_personality_query_is_allowed():
    r = ok(SYSCALL_PRELUDE + "sc(135, 0xffffffff)")
    assert r.value[0] >= 0


def test_denied_syscall_surfaces_as_python_error_not_violation():
    r = run("import os; os.unshare(os.CLONE_NEWUSER) if hasattr(os, 'unshare') else "
            "(_ for _ in ()).throw(PermissionError(1, 'unshare'))")
    assert r.exit_code == 1 and r.violation is None
    assert "PermissionError" in r.stderr


def test_plain_fork_and_subprocess_still_work():
    r = ok("""
import os, subprocess
pid = os.fork()
if pid == 0:
    os._exit(7)
_, st = os.waitpid(pid, 0)
(os.waitstatus_to_exitcode(st), subprocess.run(['/bin/echo', 'hi'], capture_output=True).stdout)
""")
    assert r.value == (7, b"hi\n")


def test_ptrace_of_parent_fails_via_python():
    r = ok(SYSCALL_PRELUDE + "sc(101, 16, ppid, 0, 0)", {"ppid": os.getpid()})
    assert r.value == (-1, errno.EPERM)


def test_kill_all_processes_does_not_escape():
    canary = subprocess.Popen(["sleep", "60"])
    try:
        r = run("""
import os, signal
res = []
for target in (-1, 0):
    try:
        os.kill(target, signal.SIGKILL); res.append('sent')
    except OSError as e:
        res.append(type(e).__name__)
res
""")
        time.sleep(0.2)
        assert canary.poll() is None, "kill(-1) from the sandbox reached a host process"
        assert os.getpid() == 1  # and we, the runner, are obviously alive
        assert r.violation is None
    finally:
        canary.kill()
        canary.wait()


def test_kill_parent_pid_does_not_reach_parent():
    canary = subprocess.Popen(["sleep", "60"])
    try:
        r = ok("""
import os, signal
res = []
for pid in (os.getppid(), canary):  # getppid() is 0: the parent is outside the ns
    try:
        os.kill(pid, signal.SIGKILL); res.append('sent')
    except OSError as e:
        res.append(type(e).__name__)
(os.getppid(), res)
""", {"canary": canary.pid})
        ppid, res = r.value
        assert ppid == 0 and res[1] == "ProcessLookupError", r.value
        assert r.exit_code == 0 and "cpu_seconds" in r.details  # the keeper survived
        assert canary.poll() is None
    finally:
        canary.kill()
        canary.wait()


def test_process_group_of_runner_is_not_shared():
    # keeper and sandbox each call setsid(): kill(0) from inside reaches only the sandbox
    r = ok("import os; (os.getpgid(0), os.getsid(0))")
    assert r.value == (1, 1)  # its own session, led by the namespace init


def test_runs_unprivileged_inside_and_outside():
    r = ok("""
import os
st = dict(l.split(':\\t', 1) for l in open('/proc/self/status').read().splitlines() if ':\\t' in l)
(os.getuid(), os.getgid(), os.getgroups(), st['CapEff'].strip(), st['CapBnd'].strip(),
 st['NoNewPrivs'].strip(), st['Seccomp'].strip(), open('/proc/self/uid_map').read().split())
""")
    uid, gid, groups, capeff, capbnd, nnp, seccomp_mode, uid_map = r.value
    assert (uid, gid) == (1000, 1000)
    assert capeff == "0000000000000000" and capbnd == "0000000000000000"
    assert nnp == "1" and seccomp_mode == "2"
    from actorium.isolation.jail import SANDBOX_UID_BASE, _in_initial_userns
    assert uid_map[0] == "1000" and uid_map[2] == "1"
    if os.geteuid() == 0 and _in_initial_userns():  # host root: dedicated outside uid
        assert int(uid_map[1]) >= SANDBOX_UID_BASE
    else:  # unprivileged: only our own uid can be mapped
        assert int(uid_map[1]) == os.geteuid()


def test_hostname_is_sandbox():
    assert ok("import socket; socket.gethostname()").value == "sandbox"
