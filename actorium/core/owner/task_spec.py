"""What an owner remembers about a task or actor call it submitted (its arguments come
packed by ``arguments.py``), and how a submission returns its refs to the caller."""
from __future__ import annotations

from actorium.core.objects.object_ref import ObjectRef, ObjectRefGenerator
from actorium.core.objects.stream import Stream


class TaskSpec:
    """One submission. ``holds`` keeps every ref the task needs alive until it ends."""
    __slots__ = ("task_id", "kind", "fn_id", "name", "args", "slots", "resolved",
                 "num_returns", "return_ids", "key", "shape", "retries_left",
                 "retry_exceptions", "actor_id", "method", "seq", "cancelled", "lease", "state", "story",
                 "pending_deps", "holds", "stream", "job", "failed", "request_key", "strategy",
                 "lineage", "ordered", "parent")

    def __init__(self, task_id, kind, name, args, slots, num_returns, return_ids, job):
        self.task_id = task_id
        self.kind = kind  # "task" | "actor" | "create"
        self.state = None  # a TaskState once submitted (task_state.py)
        self.story: list = []  # every TaskState it went through, in order
        self.fn_id = b""
        self.name = name
        self.args = args
        self.slots = slots  # [(slot index, ObjectRef)] resolved before the call is pushed
        self.resolved: list = []
        self.num_returns = num_returns
        self.return_ids = return_ids
        self.key = None
        self.shape = None
        self.retries_left = 0
        self.retry_exceptions = False
        self.actor_id = b""
        self.method = ""
        self.seq = 0
        self.cancelled = False
        self.lease = None
        self.pending_deps = 0
        self.holds: list = []
        self.stream = None
        self.job = job
        self.failed = False
        self.request_key = b""  # actor calls: .options(request_id=...) for durable actors
        self.strategy = None  # wire form (placement.normalize)
        self.lineage = False  # kept after finishing, to rebuild a lost result
        self.ordered = False  # actor calls: sent only after every earlier call of this caller
        self.parent = b""  # the task that submitted it, for recursive cancel


def submit_and_return(cw, spec, submit):
    """Create the caller's refs for ``spec``, hand it to ``submit`` on the I/O thread, and
    return what ``.remote()`` returns: one ref, a list, None, or a streaming generator."""
    refs = [ObjectRef(oid, cw.owner_addr) for oid in spec.return_ids]
    spec.parent = cw.current_task_id
    if spec.num_returns.__class__ is str:  # "streaming" or "dynamic": items arrive one by one
        spec.stream = Stream(cw, spec.task_id)
        cw.post(submit, spec)
        if spec.num_returns == "streaming":
            return ObjectRefGenerator(refs[0], spec.stream)
        return refs[0]  # "dynamic": its value is the DynamicObjectRefGenerator
    cw.post(submit, spec)
    if len(refs) == 1:
        return refs[0]
    return refs if refs else None
