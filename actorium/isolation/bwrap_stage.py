"""Inside a bubblewrap sandbox: finish the jail the way the built-in one does, run the job.

Started by ``bwrap`` (see ``actorium.isolation.bwrap``) as pid 1 of the sandbox's pid
namespace, with a fresh interpreter (``python -I -S``) whose ``actorium`` package is a
bare namespace (no ``actorium/__init__`` runs: nothing of the runtime is imported here).
The job (msgpack, from an inherited memfd) says what to run and which fds to keep.

Order of hardening, as in ``jail.enter_jail``: close every other fd, scrub the
environment, rlimits, drop capabilities, NO_NEW_PRIVS, Landlock, our seccomp filter;
then report ``OK`` on the setup fd and run the job.
"""
from __future__ import annotations

import errno
import os
import sys


def main() -> None:
    rc = 125
    setup_fd = -1
    try:
        job_fd = int(sys.argv[1])
        sys.path[1:1] = [p for p in sys.argv[2:] if p not in sys.path]  # site-packages
        data = b""
        while True:
            chunk = os.read(job_fd, 1 << 20)
            if not chunk:
                break
            data += chunk
        os.close(job_fd)
        import msgpack
        job = msgpack.unpackb(data, raw=False)
        setup_fd = job["setup_fd"]
        from . import _sys, landlock, seccomp
        from .channel import policy_from_dict
        from .jail import _close_fds_except, _scrub_environment, _set_rlimits
        policy = policy_from_dict(job["policy"])
        _close_fds_except(job["keep_fds"])
        _scrub_environment(dict(policy.env))
        _set_rlimits(policy, job["have_cgroup"])
        _sys.drop_all_capabilities()
        _sys.prctl(_sys.PR_SET_NO_NEW_PRIVS, 1)
        try:
            landlock.apply(writable=("/tmp",), devices=("/dev",))
        except OSError as e:
            if e.errno not in (errno.ENOSYS, errno.EOPNOTSUPP):
                raise
        seccomp.install_filter()
        os.write(setup_fd, b"OK")
        os.close(setup_fd)
        setup_fd = -1
        from .calls import run_job
        rc = run_job(job, job["res_fd"])
    except BaseException as exc:
        if setup_fd < 0:  # before the job was read: the parent sees this on stderr
            import traceback
            traceback.print_exc()
        else:
            try:
                os.write(setup_fd, f"ER{type(exc).__name__}: {exc}".encode()[:4000])
            except OSError:
                pass
    finally:
        os._exit(rc & 0xFF if rc >= 0 else 1)
