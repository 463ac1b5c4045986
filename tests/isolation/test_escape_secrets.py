"""Escape suite, part 1: nothing secret of the host is visible from inside the sandbox."""
import os

import pytest

from isolation_helpers import ok

pytestmark = pytest.mark.jail


def test_own_environment_holds_only_the_allowlist(secret_env, boot_secret):
    r = ok("import os; dict(os.environ)")
    assert set(r.value) == {"PATH", "LANG", "HOME", "TMPDIR"}
    assert secret_env not in repr(r.value) and boot_secret not in repr(r.value)


def test_proc_self_environ_is_scrubbed(secret_env, boot_secret):
    r = ok("open('/proc/self/environ', 'rb').read()")
    assert secret_env.encode() not in r.value and boot_secret.encode() not in r.value


def test_proc_1_environ_is_the_sandbox_itself(secret_env, boot_secret):
    r = ok("import os; (os.getpid(), open('/proc/1/environ', 'rb').read())")
    pid, env = r.value
    assert pid == 1
    assert secret_env.encode() not in env and boot_secret.encode() not in env


def test_parent_environ_is_unreachable(secret_env):
    import subprocess
    # a host process holding the secret in its environment, at a pid the sandbox is told
    holder = subprocess.Popen(["sleep", "60"], env={"HOLDER_SECRET": secret_env})
    try:
        r = ok("""
import os
res = {}
for pid in (os.getppid(), holder):
    try:
        res[pid] = open(f'/proc/{pid}/environ', 'rb').read()
    except OSError as e:
        res[pid] = type(e).__name__
res
""", {"holder": holder.pid})
        assert r.value == {0: "FileNotFoundError", holder.pid: "FileNotFoundError"}
    finally:
        holder.kill()
        holder.wait()


def test_secret_file_is_unreadable(secret_file):
    path, value = secret_file
    r = ok("""
try:
    out = open(path).read()
except OSError as e:
    out = type(e).__name__
out
""", {"path": path})
    assert r.value == "FileNotFoundError"


def test_etc_shadow_is_absent():
    r = ok("import os; (os.path.exists('/etc/shadow'), sorted(os.listdir('/etc')))")
    assert r.value == (False, ["group", "hostname", "hosts", "passwd"])


def test_ssh_keys_are_absent():
    r = ok("""
import os, glob
[p for p in ['/root/.ssh', os.path.expanduser('~/.ssh'), '/home'] if os.path.exists(p)] + glob.glob('/home/*/.ssh')
""")
    assert r.value == []


def test_proc_self_root_leads_to_the_jail_root(secret_file):
    path, _ = secret_file
    r = ok("""
import os
(sorted(os.listdir('/proc/self/root')), os.path.exists('/proc/self/root' + path),
 os.path.exists('/proc/self/root/proc/self/root' + path))
""", {"path": path})
    top, leak1, leak2 = r.value
    assert "home" not in top and leak1 is False and leak2 is False


def test_proc_self_cwd_traversal_stays_in_jail(secret_file):
    path, _ = secret_file
    r = ok("""
import os
os.chdir('/proc/self/cwd/../../../../..')
(os.getcwd(), os.path.exists(path), sorted(os.listdir('.')))
""", {"path": path})
    cwd, exists, listing = r.value
    assert cwd == "/" and exists is False and "home" not in listing


def test_proc_self_fd_holds_only_the_sandbox_channels():
    r = ok("""
import os
links = {}
for fd in os.listdir('/proc/self/fd'):
    try:
        links[int(fd)] = os.readlink(f'/proc/self/fd/{fd}')
    except OSError:
        pass  # listdir's own, already closed descriptor
links
""")
    links = r.value
    # 0 /dev/null, 1 and 2 stdout/stderr pipes, the result pipe: nothing else
    assert sorted(links) == [0, 1, 2, 3] or len(links) == 4, links
    assert all(v.startswith(("pipe:", "/dev/null", "/proc/")) for v in links.values()), links


def test_proc_self_fd_traversal_reaches_no_host_file():
    r = ok("""
import os
found = []
for fd in os.listdir('/proc/self/fd'):
    for rel in ('', '/..', '/../..'):
        p = f'/proc/self/fd/{fd}{rel}'
        try:
            if os.path.isdir(p):
                found += os.listdir(p)
        except OSError:
            pass
sorted(set(found))
""")
    assert not {"home", "work", "shm"} & set(r.value), r.value


def test_only_sandbox_processes_are_visible():
    r = ok("import os; sorted(int(p) for p in os.listdir('/proc') if p.isdigit())")
    assert r.value == [1]


def test_dev_shm_store_is_unreachable(tmp_path):
    name = f"/dev/shm/actorium-test-{os.getpid()}-store"
    with open(name, "w") as f:
        f.write("object store bytes")
    try:
        r = ok("""
import os, glob
(os.path.exists('/dev/shm'), glob.glob('/dev/shm/actorium*'), os.path.exists(name))
""", {"name": name})
        assert r.value == (False, [], False)
    finally:
        os.unlink(name)


def test_lmdb_store_file_is_unreachable(tmp_path):
    import lmdb
    env = lmdb.open(str(tmp_path / "store"), map_size=1 << 20)
    with env.begin(write=True) as txn:
        txn.put(b"k", b"secret-object")
    env.close()
    r = ok("""
import os
try:
    open(os.path.join(path, 'data.mdb'), 'rb').read(); out = 'opened'
except OSError as e:
    out = type(e).__name__
out
""", {"path": str(tmp_path / "store")})
    assert r.value == "FileNotFoundError"


def test_sys_class_net_is_absent():
    r = ok("import os; (os.path.exists('/sys'), os.path.exists('/sys/class/net'))")
    assert r.value == (False, False)


def test_root_filesystem_is_read_only():
    r = ok("""
res = []
for p in ('/x', '/usr/x', '/etc/passwd', '/proc/x'):
    try:
        open(p, 'w').write('x'); res.append('written')
    except OSError as e:
        res.append(type(e).__name__)
res
""")
    assert "written" not in r.value, r.value


def test_tmp_is_private_and_writable(tmp_path):
    (tmp_path / "host-file").write_text("x")
    r = ok("""
import os
open('/tmp/mine', 'w').write('ok')
(sorted(os.listdir('/tmp')), open('/tmp/mine').read())
""")
    # Only runtime paths the jail itself binds read-only (a checkout under /tmp) may
    # appear besides the sandbox's own files; nothing else of the host /tmp.
    from actorium.isolation import bwrap, rootfs
    from actorium.isolation.policy import SandboxPolicy
    policy = SandboxPolicy()
    sources = (bwrap.bind_sources if policy.backend == "bwrap" else rootfs.bind_sources)(policy)
    runtime = {p.split("/")[2] for p in sources if p.startswith("/tmp/")}
    listing, content = r.value
    assert sorted(set(listing) - runtime) == ["mine"] and content == "ok"
    host_top = tmp_path.parts[2] if str(tmp_path).startswith("/tmp/") else None
    assert host_top is None or host_top in runtime or host_top not in listing


def test_policy_files_are_visible_read_only():
    r = ok("""
try:
    open('/data/in.csv', 'a').write('x'); w = 'written'
except OSError as e:
    w = type(e).__name__
(open('/data/in.csv').read(), w)
""", files={"/data/in.csv": b"a,b\n1,2\n"})
    assert r.value in (("a,b\n1,2\n", "PermissionError"), ("a,b\n1,2\n", "OSError"))
