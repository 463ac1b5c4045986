"""Trusted callables run inside jails: the jail side of sandboxed functions and actors.

The trusted caller (a worker of the cluster) cloudpickles a function or class together
with its arguments; only the jailed process unpickles it — pickle flows *into* a sandbox,
never out of one.  What comes back is an *envelope*: msgpack of
``{"value": <codec bytes> | None, "error": None | {type, message, traceback}}`` (the
value through the data-only codec, ``actorium.isolation.codec``), so the trusted side
can inspect the envelope with plain msgpack and hand the value bytes on undecoded (the
worker decodes them with limits; the zygote never needs numpy).

Resident jails (sandboxed actors) speak length-prefixed frames: the parent writes
pickled ``(method, args, kwargs)`` frames to the jail's call pipe, the jail answers each
with one envelope frame on its result pipe; the first frame it writes says whether the
constructor succeeded (``{"ready": True}`` or an error envelope).

Invariants
----------
* An envelope is at most ``MAX_ERROR_TEXT`` of error text plus the codec bytes; a value
  the codec cannot carry becomes a ``CodecError`` error envelope, never a crash.
* Output written by the callable before its envelope is flushed to fds 1/2 *before* the
  envelope is written, so the parent can attribute it to that call.
"""
from __future__ import annotations

import os
import pickle
import struct

import msgpack

from . import codec
from .runner import classify, exit_status, flush_stdio, run_jailed, wire_stdio, write_all

__all__ = ["run_call", "call_result", "run_job", "job_body", "read_all", "snippet_fields",
           "plain_details", "resident_body", "envelope", "read_envelope", "FRAME_HEADER",
           "FrameBuffer", "MAX_ERROR_TEXT", "write_frame"]

FRAME_HEADER = struct.Struct("<I")
MAX_ERROR_TEXT = 64 * 1024


def _await(value):
    """Run a coroutine result to completion (async methods and functions)."""
    import inspect
    if inspect.iscoroutine(value):
        import asyncio
        return asyncio.run(value)
    return value


def _error(exc: BaseException) -> dict:
    import traceback
    tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return {"type": type(exc).__name__, "module": type(exc).__module__,
            "message": str(exc)[:MAX_ERROR_TEXT], "traceback": tb[-MAX_ERROR_TEXT:]}


def envelope(value=None, error: BaseException | None = None) -> bytes:
    """Encode one call's outcome (inside the jail)."""
    if error is not None:
        return msgpack.packb({"value": None, "error": _error(error)}, use_bin_type=True)
    try:
        data = codec.encode(value)
    except codec.CodecError as exc:
        err = {"type": "CodecError", "module": "actorium.isolation.codec",
               "message": f"the return value cannot leave the sandbox: {exc}",
               "traceback": ""}
        return msgpack.packb({"value": None, "error": err}, use_bin_type=True)
    return msgpack.packb({"value": data, "error": None}, use_bin_type=True)


def read_envelope(data: bytes, max_bytes: int) -> dict:
    """Check an envelope from a sandbox (trusted side). Raises ValueError if malformed.

    Only plain msgpack is parsed here; the value stays codec bytes."""
    out = msgpack.unpackb(data, raw=False, max_bin_len=max_bytes, max_str_len=max_bytes,
                          max_array_len=16, max_map_len=16)
    if not isinstance(out, dict):
        raise ValueError("envelope is not a map")
    if out.get("ready") is True and set(out) == {"ready"}:
        return out
    value, error = out.get("value"), out.get("error")
    if value is not None and not isinstance(value, bytes):
        raise ValueError("envelope value is not bytes")
    if error is not None:
        if not isinstance(error, dict) or not all(
                isinstance(error.get(k), str) for k in ("type", "module", "message", "traceback")):
            raise ValueError("malformed error in envelope")
        error = {k: error[k][:MAX_ERROR_TEXT] for k in ("type", "module", "message", "traceback")}
    return {"value": value, "error": error}


class FrameBuffer:
    """Reassembles length-prefixed frames from a byte stream."""

    def __init__(self, max_frame: int):
        self.buf = bytearray()
        self.max_frame = max_frame

    def feed(self, data: bytes) -> list[bytes]:
        self.buf += data
        frames = []
        while len(self.buf) >= FRAME_HEADER.size:
            (n,) = FRAME_HEADER.unpack_from(self.buf)
            if n > self.max_frame:
                raise ValueError(f"frame of {n} bytes exceeds the limit of {self.max_frame}")
            if len(self.buf) < FRAME_HEADER.size + n:
                break
            frames.append(bytes(self.buf[FRAME_HEADER.size:FRAME_HEADER.size + n]))
            del self.buf[:FRAME_HEADER.size + n]
        return frames


def write_frame(fd: int, data: bytes) -> None:
    write_all(fd, FRAME_HEADER.pack(len(data)) + data)


def _read_exact(fd: int, n: int) -> bytes | None:
    parts, got = [], 0
    while got < n:
        chunk = os.read(fd, min(n - got, 1 << 20))
        if not chunk:
            return None
        parts.append(chunk)
        got += len(chunk)
    return b"".join(parts)


# ---------------------------------------------------------------- the trusted side

def run_call(payload: bytes, policy) -> dict:
    """Run one pickled call in a fresh jail (single-threaded caller: the zygote's handler).

    Returns plain fields: stdout, stderr, exit_code, value (codec bytes or None, not
    decoded here), error (dict or None), violation, duration, details."""
    def body(res_fd: int) -> int:
        return call_body(payload, res_fd)
    body.job = {"kind": "call", "payload": payload}
    col, stats, duration = run_jailed(body, policy)
    return call_result(col, stats, policy, duration)


def call_result(col, stats: dict, policy, duration: float) -> dict:
    """The plain result fields of a finished call jail (see ``run_call``)."""
    exit_code, signum, details = exit_status(col, stats)
    env = {"value": None, "error": None}
    raw = bytes(col.bufs.get("result", b""))
    if raw and col.kill_reason != "output":
        try:
            env = read_envelope(raw, policy.max_output_bytes + 1024)
        except ValueError as exc:
            details["result_error"] = str(exc)
    violation = classify(col, stats, policy, exit_code, signum, details,
                         (env["error"] or {}).get("type"))
    return {"stdout": bytes(col.bufs.get("stdout", b"")).decode("utf-8", "replace"),
            "stderr": bytes(col.bufs.get("stderr", b"")).decode("utf-8", "replace"),
            "exit_code": exit_code, "value": env["value"], "error": env["error"],
            "violation": violation, "duration": duration, "details": details}


# ---------------------------------------------------------------- inside the jail

def run_job(job: dict, res_fd: int) -> int:
    """Run a job described as data (fresh-interpreter backends and pre-started jails)."""
    from .runner import _run_user_code
    kind = job.get("kind")
    if kind == "snippet":
        return _run_user_code(job["code"], codec.decode(job["inputs"]), res_fd)
    if kind == "call":
        return call_body(job["payload"], res_fd)
    if kind == "resident":
        return resident_body(job["payload"], job["call_fd"], res_fd)
    if kind == "warm":  # a pre-started jail: the real job arrives later on a pipe
        return job_body(job["job_fd"], res_fd)
    raise ValueError(f"unknown sandbox job {kind!r}")


def call_body(payload: bytes, res_fd: int) -> int:
    """One call: ``payload`` = pickle of (function bytes, args, kwargs). Jailed."""
    wire_stdio("<sandboxed function>")
    rc = 0
    try:
        fn_bytes, args, kwargs = pickle.loads(payload)
        fn = pickle.loads(fn_bytes)
        out = envelope(_await(fn(*args, **kwargs)))
    except BaseException as exc:
        out = envelope(error=exc)
        rc = 1
    flush_stdio()
    write_all(res_fd, out)
    return rc


def resident_body(payload: bytes, call_fd: int, res_fd: int) -> int:
    """A sandboxed actor: construct, then answer calls until the call pipe closes."""
    wire_stdio("<sandboxed actor>")
    try:
        cls_bytes, args, kwargs = pickle.loads(payload)
        cls = pickle.loads(cls_bytes)
        instance = cls(*args, **kwargs)
    except BaseException as exc:
        flush_stdio()
        write_frame(res_fd, envelope(error=exc))
        return 1
    flush_stdio()
    write_frame(res_fd, msgpack.packb({"ready": True}))
    while True:
        header = _read_exact(call_fd, FRAME_HEADER.size)
        if header is None:
            return 0
        data = _read_exact(call_fd, FRAME_HEADER.unpack(header)[0])
        if data is None:
            return 0
        try:
            method, args, kwargs = pickle.loads(data)
            out = envelope(_await(getattr(instance, method)(*args, **kwargs)))
        except BaseException as exc:
            out = envelope(error=exc)
        flush_stdio()
        write_frame(res_fd, out)


def read_all(fd: int, limit: int) -> bytes | None:
    parts, size = [], 0
    while True:
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            return b"".join(parts)
        size += len(chunk)
        if size > limit:
            return None
        parts.append(chunk)


def job_body(job_fd: int, res_fd: int) -> int:
    """Inside the jail: wait for the job (msgpack on ``job_fd``), run it."""
    data = read_all(job_fd, 1 << 30)
    os.close(job_fd)
    if not data:
        return 0  # no job: the spare is being retired
    return run_job(msgpack.unpackb(data, raw=False), res_fd)


# ---------------------------------------------------------------- reports

def snippet_fields(r) -> dict:
    """A snippet's SandboxResult as the plain map of a ``result`` message."""
    try:
        value = codec.encode(r.value)
    except codec.CodecError:  # cannot happen for a decoded value; be safe
        value = codec.encode(None)
    return {"stdout": r.stdout, "stderr": r.stderr, "exit_code": r.exit_code,
            "value": value, "violation": r.violation, "duration": r.duration,
            "details": plain_details(r.details)}


def plain_details(details: dict) -> dict:
    return {str(k): v for k, v in details.items()
            if isinstance(v, (int, float, str, bool)) or v is None}
