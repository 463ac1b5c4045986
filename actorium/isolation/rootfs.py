"""The jail's filesystem: a fresh tmpfs root holding only the Python runtime.

Invariants
----------
* The new root is a tmpfs; the only host content visible inside is what ``bind_sources``
  lists (the interpreter prefix, the venv's site-packages, /usr and the policy's
  ``allowed_paths``), each bind-mounted read-only, nosuid, nodev, recursively.
  Never bound: /home, /root (beyond the interpreter prefix), /etc, host /tmp,
  /dev/shm, /sys, /run, the object store or the session directory.
* /proc is a fresh procfs of the sandbox's own pid namespace; /dev holds only
  null, zero, full, random and urandom (bind mounts of the host nodes); /tmp is a private
  size- and inode-capped tmpfs, the only writable place.
* The root is remounted read-only after it is populated; the old root is detached, so no
  path (including /proc/self/root, /proc/1/cwd) leads back to the host tree.
* The tree is staged by the still-privileged process (real root in a private mount
  namespace when the caller is root, so host paths such as /root (0700) can be traversed
  and flags set freely); the user namespace created afterwards receives a locked copy of
  it, which the unprivileged jail can mount over (/proc, /tmp) but not unmount or remount
  writable.  ``finish_root`` then pivots into it and detaches the host tree.
"""
from __future__ import annotations

import os
import site
import stat
import sys

from . import _sys

__all__ = ["bind_sources", "stage_root", "finish_root", "DEVICES", "STAGE"]

STAGE = "/tmp"  # preferred mount point of the staged root, in the jail's private mount ns
# Other existing directories that can serve as the mount point when a bind source lives
# under /tmp (e.g. a checkout in /tmp): mounting the stage there would hide the source.
_STAGE_CANDIDATES = (STAGE, "/mnt", "/media", "/srv", "/opt", "/var/tmp", "/run")
_stage_in_use = STAGE
_sources_under_tmp: list[str] = []


def _pick_stage(sources: list[str]) -> str:
    """The first candidate directory that neither contains nor lies inside a bind source."""
    for cand in _STAGE_CANDIDATES:
        if not os.path.isdir(cand) or os.path.islink(cand):
            continue
        if any(src == cand or src.startswith(cand + "/") or cand.startswith(src.rstrip("/") + "/")
               for src in sources):
            continue
        return cand
    raise OSError(f"no directory to stage the sandbox root in: every one of "
                  f"{_STAGE_CANDIDATES} overlaps the runtime paths {sources}")

DEVICES = ("null", "zero", "full", "random", "urandom")
_TOP_SYMLINKS = ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
_PASSWD = "root:x:0:0::/:/bin/false\nsandbox:x:1000:1000:sandbox:/tmp:/bin/sh\n"
_GROUP = "root:x:0:\nsandbox:x:1000:\n"
_HOSTS = "127.0.0.1\tlocalhost sandbox\n::1\tlocalhost ip6-localhost\n"


def _covered(path: str, by: list[str]) -> bool:
    return any(path == p or path.startswith(p.rstrip("/") + "/") for p in by)


def bind_sources(policy) -> list[str]:
    """Host paths to bind read-only, outermost first, without redundant nesting."""
    wanted = ["/usr", sys.base_prefix, *site.getsitepackages()]
    for top in _TOP_SYMLINKS:  # merged-/usr systems have symlinks here (made in-root)
        if os.path.isdir(top) and not os.path.islink(top):
            wanted.append(top)
    wanted += list(policy.allowed_paths)
    out: list[str] = []
    for p in sorted({os.path.realpath(p) for p in wanted if os.path.exists(p)}, key=len):
        if not _covered(p, out):
            out.append(p)
    missing = [p for p in policy.allowed_paths if not os.path.exists(p)]
    if missing:
        raise FileNotFoundError(f"allowed_paths do not exist: {missing}")
    return out


def _mkdirs(path: str) -> None:
    os.makedirs(path, mode=0o755, exist_ok=True)


def _bind(source: str, target: str, is_dir: bool, readonly: bool = True) -> None:
    if is_dir:
        _mkdirs(target)
    else:
        _mkdirs(os.path.dirname(target))
        os.close(os.open(target, os.O_CREAT | os.O_WRONLY, 0o644))
    _sys.mount(source, target, None, _sys.MS_BIND | _sys.MS_REC)
    if readonly:
        try:
            _sys.mount_setattr_recursive(
                target, _sys.MOUNT_ATTR_RDONLY | _sys.MOUNT_ATTR_NOSUID | _sys.MOUNT_ATTR_NODEV)
        except OSError:  # pre-5.12 kernel: top mount only, keeping locked flags
            flags = _sys.MS_REMOUNT | _sys.MS_BIND | _sys.MS_RDONLY | _sys.MS_NOSUID | _sys.MS_NODEV
            st = os.statvfs(target)
            for sf, mf in ((os.ST_NOEXEC, _sys.MS_NOEXEC), (os.ST_NOATIME, _sys.MS_NOATIME),
                           (os.ST_NODIRATIME, _sys.MS_NODIRATIME),
                           (getattr(os, "ST_RELATIME", 4096), _sys.MS_RELATIME)):
                if st.f_flag & sf:
                    flags |= mf
            _sys.mount(None, target, None, flags)


def _write_file(path: str, data: bytes, mode: int = 0o444) -> None:
    _mkdirs(os.path.dirname(path))
    fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fchmod(fd, mode)
    finally:
        os.close(fd)


def stage_root(policy, sources: list[str], stage: str | None = None) -> None:
    """Build the read-only root at ``stage`` (chosen to avoid the sources if not given).
    Needs CAP_SYS_ADMIN over a private mount ns; ``finish_root`` in the same process or a
    forked child uses the same stage."""
    global _stage_in_use, _sources_under_tmp
    stage = stage or _pick_stage(sources)
    _stage_in_use = stage
    # The jail's private /tmp is mounted later and would hide these binds: redo them then.
    _sources_under_tmp = [p for p in sources if p.startswith("/tmp/")]
    # Nothing we mount may propagate back to the host (or receive host mounts).
    _sys.mount(None, "/", None, _sys.MS_REC | _sys.MS_PRIVATE)
    files_bytes = sum(len(v) for v in policy.files.values())
    _sys.mount("tmpfs", stage, "tmpfs", _sys.MS_NOSUID | _sys.MS_NODEV,
               f"size={files_bytes + 4 * 1024 * 1024},nr_inodes=4096,mode=755")
    root = stage
    for path in sources:
        _bind(path, root + path, os.path.isdir(path))
    for top in _TOP_SYMLINKS:
        if os.path.islink(top):
            os.symlink(os.readlink(top), root + top)
    _mkdirs(root + "/dev")
    for dev in DEVICES:
        if os.path.exists("/dev/" + dev) and stat.S_ISCHR(os.stat("/dev/" + dev).st_mode):
            # device binds stay writable: writes to /dev/null must work (and a read-only
            # mount flag does not restrict writes to a character device anyway)
            _bind("/dev/" + dev, f"{root}/dev/{dev}", False, readonly=False)
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"),
                         ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2")):
        os.symlink(target, f"{root}/dev/{name}")
    _write_file(root + "/etc/passwd", _PASSWD.encode())
    _write_file(root + "/etc/group", _GROUP.encode())
    _write_file(root + "/etc/hosts", _HOSTS.encode())
    _write_file(root + "/etc/hostname", b"sandbox\n")
    for path, data in policy.files.items():
        _write_file(root + path, data)
    _mkdirs(root + "/tmp")
    _mkdirs(root + "/proc")
    _sys.mount(None, root, None, _sys.MS_REMOUNT | _sys.MS_BIND | _sys.MS_RDONLY
               | _sys.MS_NOSUID | _sys.MS_NODEV)


def finish_root(policy, stage: str | None = None) -> None:
    """Mount /tmp and a fresh /proc, pivot into the staged root, detach the host tree.

    Runs inside the sandbox's pid namespace (for /proc), with CAP_SYS_ADMIN over the
    jail's user and mount namespaces.  Afterwards cwd is /tmp.
    """
    stage = stage or _stage_in_use
    # The staged root arrived locked (copied into a less privileged user namespace) and
    # pivot_root refuses a locked new root: bind it onto itself to get an unlocked top
    # mount (its read-only flag stays locked on).
    _sys.mount(stage, stage, None, _sys.MS_BIND | _sys.MS_REC)
    _sys.mount("tmpfs", stage + "/tmp", "tmpfs",
               _sys.MS_NOSUID | _sys.MS_NODEV | _sys.MS_NOEXEC,
               f"size={policy.tmp_size},nr_inodes=16384,mode=1777")
    for path in _sources_under_tmp:  # runtime paths inside /tmp (e.g. a checkout in /tmp)
        _bind(path, stage + path, os.path.isdir(path))
    # Fresh procfs: must happen while the host /proc is still visible in this mount
    # namespace (the kernel refuses a procfs mount that would reveal more than one
    # already visible) and from inside the new pid namespace (it shows that namespace).
    _sys.mount("proc", stage + "/proc", "proc",
               _sys.MS_NOSUID | _sys.MS_NODEV | _sys.MS_NOEXEC)
    os.chdir(stage)
    _sys.pivot_root(".", ".")          # old root ends up stacked under the new one
    _sys.umount2(".", _sys.MNT_DETACH)  # ... and is detached: no way back to the host
    os.chdir("/tmp")
