"""Starting and stopping node processes, and finding a running cluster.

An embedded cluster (``init()`` with no address) is one node process started here, in
its own process group; it watches the driver's pid and exits if the driver dies, so a
SIGKILLed driver never leaves a cluster behind. ``actorium start --head`` starts a
detached node (no driver pid) and writes ``$ACTORIUM_TMPDIR/current_cluster`` (default
``/tmp/actorium-sessions/current_cluster``) so ``init(address="auto")`` can find it.
"""
from __future__ import annotations

import json
import os
import select
import shutil
import signal
import subprocess
import sys
import time
import uuid

ROOT = os.environ.get("ACTORIUM_TMPDIR", "/tmp/actorium-sessions")
CURRENT = os.path.join(ROOT, "current_cluster")
JOINED = os.path.join(ROOT, "joined")  # one record per node this machine joined to a head


# sockets are unix sockets under <session>/sockets/, named up to "o-" + 24 hex digits;
# a socket path may hold at most 107 bytes (sizeof(sun_path) - 1)
_SOCKET_PATH_MAX = 107
_LONGEST_SOCKET = len("/sockets/") + len("o-") + 24


def new_session_dir() -> str:
    """A fresh session directory, mode 0700: its ipc sockets are unauthenticated, so
    only the owner may reach them."""
    path = os.path.join(ROOT, "s-" + uuid.uuid4().hex[:10])
    if len(path.encode()) + _LONGEST_SOCKET > _SOCKET_PATH_MAX:
        room = _SOCKET_PATH_MAX - _LONGEST_SOCKET - len("/s-") - 10
        raise ValueError(f"the session directory {path!r} is too long for the unix sockets "
                         f"actorium creates in it; set ACTORIUM_TMPDIR to a directory of "
                         f"at most {room} bytes (it is {ROOT!r})")
    os.makedirs(path, mode=0o700)
    os.chmod(path, 0o700)  # whatever the umask
    os.makedirs(os.path.join(path, "sockets"), exist_ok=True)
    os.makedirs(os.path.join(path, "logs"), exist_ok=True)
    return path


def start_node(session_dir: str, *, head: bool, num_cpus: float, num_gpus: float = 0,
               resources: dict | None = None, gcs_address: str = "", port: int = 0,
               host: str = "127.0.0.1", driver_pid: int = 0, object_store_memory: int = 0,
               timeout: float = 60.0, tcp: bool = False, node_timeout: float = 0.0,
               prefix: list | None = None, token=None) -> tuple[subprocess.Popen, dict]:
    """Start a node process and wait for its READY line. Raises RuntimeError with the
    node's log tail if it fails to come up in ``timeout`` seconds.

    ``tcp``: everything other nodes reach listens on TCP on ``host`` (multi-node);
    ``prefix``: a command to run the node under (e.g. ``ip netns exec NAME``).
    ``token`` (an ``auth.Token``) reaches the node through an inherited pipe, never its
    command line or environment; without it the node looks its token up itself."""
    cmd = list(prefix or []) + [sys.executable, "-m", "actorium.raylet.node", "--session-dir", session_dir,
           "--num-cpus", str(num_cpus), "--num-gpus", str(num_gpus),
           "--resources", json.dumps(resources or {}), "--host", host]
    if head:
        cmd += ["--head", "--port", str(port)]
    else:
        cmd += ["--gcs-address", gcs_address]
    if driver_pid:
        cmd += ["--driver-pid", str(driver_pid)]
    if tcp:
        cmd += ["--tcp"]
    if node_timeout:
        cmd += ["--node-timeout", str(node_timeout)]
    if object_store_memory:
        cmd += ["--object-store-memory", str(int(object_store_memory))]
    log = open(os.path.join(session_dir, "logs", f"node-{uuid.uuid4().hex[:6]}.err"), "ab")
    env = dict(os.environ)
    src = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    token_fd = -1
    if token is not None:
        from actorium.core.wire import auth
        env.pop(auth.TOKEN_ENV, None)
        token_fd = auth.token_pipe(token)
        cmd += ["--token-fd", str(token_fd)]
    try:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log,
                                stdin=subprocess.DEVNULL, start_new_session=True, env=env,
                                close_fds=True, pass_fds=(token_fd,) if token_fd >= 0 else ())
    finally:
        log.close()
        if token_fd >= 0:
            os.close(token_fd)
    deadline = time.monotonic() + timeout
    buf = b""
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 0.2)
        if ready:
            chunk = os.read(proc.stdout.fileno(), 65536)
            if not chunk:
                break
            buf += chunk
            if b"\n" in buf:
                line = buf.split(b"\n", 1)[0].decode()
                if line.startswith("READY "):
                    proc.stdout.close()
                    return proc, json.loads(line[6:])
        elif proc.poll() is not None:
            break
    kill_group(proc.pid)
    proc.wait()
    raise RuntimeError(f"the actorium node failed to start; see logs in {session_dir}/logs\n"
                       f"{_tail(session_dir)}")


def _tail(session_dir: str) -> str:
    out = []
    logs = os.path.join(session_dir, "logs")
    for name in sorted(os.listdir(logs)):
        if name.endswith(".err") or name.startswith("gcs"):
            with open(os.path.join(logs, name), "rb") as f:
                out.append(f.read()[-2000:].decode(errors="replace"))
    return "\n".join(out)


def kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def stop_node(proc: subprocess.Popen, timeout: float = 5.0) -> None:
    """Ask a node to stop (SIGTERM), then make sure its whole group is gone."""
    try:
        os.kill(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        pass
    kill_group(proc.pid)
    try:
        proc.wait(2)
    except subprocess.TimeoutExpired:
        pass


def remove_session(session_dir: str, store_roots=()) -> None:
    for root in store_roots:
        shutil.rmtree(root, ignore_errors=True)
        parent = os.path.dirname(root)
        try:
            os.rmdir(parent)
        except OSError:
            pass
    shutil.rmtree(os.path.join(session_dir, "sockets"), ignore_errors=True)
    shutil.rmtree(os.path.join(session_dir, "spill"), ignore_errors=True)
    shutil.rmtree(os.path.join(session_dir, "gcs"), ignore_errors=True)
    shutil.rmtree(os.path.join(session_dir, "standby"), ignore_errors=True)


def write_current(info: dict) -> None:
    os.makedirs(ROOT, exist_ok=True)
    tmp = CURRENT + ".tmp"
    with open(tmp, "w") as f:
        json.dump(info, f)
    os.replace(tmp, CURRENT)


def read_current() -> dict | None:
    try:
        with open(CURRENT) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def remove_current(expected: dict | None = None) -> None:
    """Delete ``current_cluster`` (only if it still describes ``expected``, when given)."""
    if expected is not None and read_current() not in (expected, None):
        return
    try:
        os.unlink(CURRENT)
    except FileNotFoundError:
        pass


def pid_alive(pid: int, session_dir: str = "", program: str = "actorium.raylet.node") -> bool:
    """Whether ``pid`` is a running (not zombie) actorium node process (or ``program``),
    of ``session_dir`` when given. A recycled pid running something else counts as dead."""
    if not pid or pid <= 0:
        return False
    import psutil
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        cmd = proc.cmdline()
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return False
    if program not in cmd:
        return False
    return not session_dir or session_dir in cmd


def wait_pid_gone(pid: int, timeout: float, session_dir: str = "",
                  program: str = "actorium.raylet.node") -> bool:
    """Wait until ``pid`` is no longer a live node process; True if it is gone."""
    deadline = time.monotonic() + timeout
    while pid_alive(pid, session_dir, program):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def session_store_dir(session_dir: str) -> str:
    """``/dev/shm/actorium/<session-name>``: where the session's nodes keep their stores."""
    return f"/dev/shm/actorium/{os.path.basename(session_dir.rstrip('/'))}"


def cleanup_session(session_dir: str) -> None:
    """Remove a stopped session's sockets, spill and gcs files and its /dev/shm store
    dirs (logs are kept for post-mortems)."""
    shm = session_store_dir(session_dir)
    roots = []
    try:
        roots = [os.path.join(shm, name) for name in os.listdir(shm)]
    except OSError:
        pass
    remove_session(session_dir, roots)
    shutil.rmtree(shm, ignore_errors=True)


# -- nodes joined to a remote head (``actorium start --address``) ----------------------
def join_node(gcs: str, host: str, **node_args) -> dict:
    """Start a detached node of this machine that joins the head at ``gcs``, in its own
    session directory, and record it for ``stop``; returns its READY info."""
    session_dir = new_session_dir()
    try:
        proc, info = start_node(session_dir, head=False, gcs_address=gcs, host=host,
                                tcp=True, **node_args)
    except RuntimeError:
        cleanup_session(session_dir)
        raise
    proc.returncode = 0  # detached: nothing here waits for or signals it
    record_joined({"node_id": info["node_id"], "pid": info["pid"], "session_dir": session_dir,
                   "gcs_tcp": gcs, "raylet_addr": info["raylet_addr"]})
    return info


def record_joined(info: dict) -> None:
    os.makedirs(JOINED, exist_ok=True)
    path = os.path.join(JOINED, f"{info['node_id']}.json")
    with open(path + ".tmp", "w") as f:
        json.dump(info, f)
    os.replace(path + ".tmp", path)


def joined_nodes() -> list[dict]:
    out = []
    try:
        names = sorted(os.listdir(JOINED))
    except OSError:
        return out
    for name in names:
        if name.endswith(".json"):
            try:
                with open(os.path.join(JOINED, name)) as f:
                    out.append(json.load(f))
            except (OSError, ValueError):
                continue
    return out


def stop_joined(record: dict, timeout: float = 10.0) -> bool:
    """Stop a joined node (SIGTERM, then SIGKILL of its group) and remove its files;
    True if it had to be killed."""
    pid = int(record.get("pid") or 0)
    forced = False
    if pid_alive(pid, record.get("session_dir", "")):
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        forced = not wait_pid_gone(pid, timeout, record.get("session_dir", ""))
    if pid:
        kill_group(pid)
    if record.get("session_dir"):
        cleanup_session(record["session_dir"])
    try:
        os.unlink(os.path.join(JOINED, f"{record['node_id']}.json"))
    except OSError:
        pass
    return forced
