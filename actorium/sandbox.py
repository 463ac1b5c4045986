"""One-call sandboxes: ``actorium.get(actorium.sandbox.run("print(1 + 1)", timeout=5))``.

``run`` asks the caller's raylet to run ``code`` in a fresh jail (DESIGN.md section 5,
docs/security.md) and returns an ObjectRef to a ``SandboxResult``. The run happens in the
node's sandbox zygote, never in a worker; the snippet's output comes back as plain
strings and its value through the data-only codec, decoded here with
``actorium.isolation.codec.decode`` — nothing the sandbox produced is ever unpickled.
The ``SandboxResult`` is then stored as the ref's value by this (trusted) process.

A snippet's own failure (exception, limit hit, seccomp denial) is data in the result:
a non-zero ``exit_code``, the traceback in ``stderr``, ``violation`` naming the limit.
Only a failure of the sandbox machinery itself makes ``actorium.get`` raise
(``SandboxError``).
"""
from __future__ import annotations

import dataclasses

from actorium.isolation.policy import SandboxPolicy
from actorium.isolation.runner import SandboxError, SandboxResult

__all__ = ["run", "SandboxResult", "SandboxPolicy", "SandboxError"]


def run(code: str, *, timeout: float | None = None, policy: SandboxPolicy | None = None,
        inputs: dict | None = None):
    """Run ``code`` in a fresh sandbox on this node; return an ObjectRef to its result.

    ``timeout`` (seconds) is the wall-clock limit (``policy.wall_seconds``); ``inputs``
    (a dict of plain data) is visible to the snippet as ``inputs`` and as globals.
    """
    from actorium.core import api
    from actorium.core.objects import serialization
    from actorium.core.wire import protocol, transport
    from actorium.core.ids import new_put_id
    from actorium.core.objects.object_ref import ObjectRef
    from actorium.core.objects.serialization import VALUE_ERROR, VALUE_INLINE
    from actorium.isolation import channel, codec

    if not isinstance(code, str):
        raise TypeError("code must be a str")
    if policy is None:
        policy = SandboxPolicy()
    elif not isinstance(policy, SandboxPolicy):
        raise TypeError("policy must be an actorium.SandboxPolicy")
    if timeout is not None:
        policy = dataclasses.replace(policy, wall_seconds=timeout,
                                     files=dict(policy.files), env=dict(policy.env))
    if inputs is not None and not isinstance(inputs, dict):
        raise TypeError("inputs must be a dict")
    inputs_blob = codec.encode(dict(inputs)) if inputs else b""  # CodecError if not data
    worker = api._worker()
    oid = new_put_id()
    ref = ObjectRef(oid, worker.owner_addr)
    msg = protocol.RunSandbox(transport.next_req_id(), code,
                              channel.policy_to_dict(policy), inputs_blob, b"",
                              worker.worker_id)

    def on_reply(reply) -> None:  # on the core worker's I/O thread
        try:
            if not reply.ok:
                raise SandboxError(f"sandbox failed: {reply.value}")
            result = _result_from_wire(reply.value, policy)
            ser = serialization.serialize(result)
            value = [VALUE_INLINE, ser.to_bytes(), ser.size]
        except Exception as exc:
            value = [VALUE_ERROR, serialization.error_blob(exc, "sandbox.run", 0,
                                                           user_error=False), 0]
        worker.refs.set_value(oid, value)

    worker.post(worker.request, "raylet", msg, on_reply)
    return ref


def _result_from_wire(r, policy: SandboxPolicy) -> SandboxResult:
    """Build the result from the raylet's reply: plain fields checked, value codec-decoded."""
    from actorium.isolation import codec
    if not isinstance(r, dict):
        raise SandboxError(f"malformed sandbox reply of type {type(r).__name__}")
    stdout, stderr = r.get("stdout", ""), r.get("stderr", "")
    exit_code, violation = r.get("exit_code"), r.get("violation")
    raw = r.get("value")
    if not (isinstance(stdout, str) and isinstance(stderr, str)
            and isinstance(exit_code, int) and not isinstance(exit_code, bool)
            and (violation is None or isinstance(violation, str))
            and isinstance(raw, bytes)):
        raise SandboxError("malformed sandbox reply")
    value = codec.decode(raw, max_bytes=policy.max_output_bytes + 1024)
    duration = r.get("duration", 0.0)
    details = r.get("details") or {}
    return SandboxResult(
        stdout=stdout, stderr=stderr, exit_code=exit_code, value=value,
        violation=violation,
        duration=float(duration) if isinstance(duration, (int, float)) else 0.0,
        details=dict(details) if isinstance(details, dict) else {})
