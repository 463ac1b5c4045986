"""Group commit for durable actors: replies leave only once the state they produced is
durable, without making the actor wait for the disk.

The actor's thread hands each finished call's reply and session events to this writer,
with a snapshot of its state (a cloudpickle, in memory) when one is due, then takes the
next call. The writer thread takes everything queued, writes the newest snapshot with
the replies and events of every call it covers in ONE fsync'd transaction, and only then
sends those replies, in call order. When the writer is idle and no call waits, the
actor's thread does the same itself (``send_now``): a lone caller pays one round trip
to the gcs per call and no thread hand-off. Under load many calls share one fsync, and the actor skips snapshots while the
writer is busy and more calls are waiting (``needs_state`` without ``state``): the next
snapshot, at the latest when the actor goes idle, covers those calls too.

Invariant: a caller never sees the result of a call whose state change (for a call that
is checkpointed) or whose session events are not yet durable. If the process dies first,
the caller sees nothing and re-delivers the call.
"""
from __future__ import annotations

import threading

from actorium.core.wire import protocol, transport
from actorium.durable import context
from actorium.exceptions import CheckpointError

# Test hook: called after a checkpoint committed and before its replies are sent, so a
# test can kill the process in exactly that window (tests/durable/test_checkpoints.py).
after_checkpoint = None


class Pending:
    """One finished call waiting for the writer."""
    __slots__ = ("owner", "task_id", "request", "name", "num_returns", "results",
                 "contained", "needs_state", "state", "cached", "events")

    def __init__(self, msg, name: str, results: list, contained: list, request: bytes = b""):
        self.owner = msg.owner
        self.task_id = msg.task_id
        self.request = request or msg.task_id  # what the reply is cached under
        self.name = name
        self.num_returns = msg.num_returns
        self.results = results
        self.contained = contained
        self.needs_state = False  # the reply waits until a snapshot covers this call
        self.state = None   # snapshot blob when this call is checkpointed
        self.cached = None  # the reply as self-contained blobs, to answer a re-delivery
        self.events: list = []  # [[log key, dedup, blob]]


class ReplyWriter:
    def __init__(self, scope: bytes, executor):
        self.scope = scope
        self.ex = executor
        self.cond = threading.Condition()
        self.queue: list[Pending] = []
        self.busy = False
        threading.Thread(target=self._run, name="actorium-checkpoint", daemon=True).start()

    def submit(self, item: Pending) -> None:
        with self.cond:
            self.queue.append(item)
            self.cond.notify()

    def idle(self) -> bool:
        """Nothing being written, sent or waiting. Only the actor's thread submits, so
        once it sees True it stays True until that thread submits again."""
        return not self.busy and not self.queue

    def _take(self) -> list[Pending]:
        """The queued calls that can be committed now: up to the first one that waits
        for a snapshot not yet taken (calls after it wait too, to keep reply order)."""
        q = self.queue
        last = max((i for i, p in enumerate(q) if p.state is not None), default=-1)
        cut = next((i for i in range(last + 1, len(q)) if q[i].needs_state), len(q))
        batch, self.queue = q[:cut], q[cut:]
        return batch

    def _run(self) -> None:
        while True:
            with self.cond:
                batch = self._take()
                while not batch:
                    self.cond.wait()
                    batch = self._take()
                self.busy = True
            try:
                self._send(batch)
            finally:
                self.busy = False

    def send_now(self, item: Pending) -> None:
        """The actor's thread commits and replies itself: only when ``idle()`` and no
        call waits, so nothing can overtake it, and a lone caller is spared two thread
        hand-offs per call (which cost most under CPU contention)."""
        self._send([item])

    def _send(self, batch: list[Pending]) -> None:
        try:
            self._commit(batch)
        except BaseException as exc:  # never strand replies: callers would wait forever
            self._fail(batch, exc)
        for p in batch:
            self.ex.reply(p.owner, p.task_id, p.results, p.contained)

    def _commit(self, batch: list[Pending]) -> None:
        last = max((i for i, p in enumerate(batch) if p.state is not None), default=-1)
        events = [e for p in batch for e in p.events]
        if last < 0 and not events:
            return
        covered = batch[:last + 1]  # calls whose effects the newest snapshot holds
        try:
            context.rpc(protocol.CheckpointPut(
                transport.next_req_id(), self.scope,
                batch[last].state if last >= 0 else None,
                [[p.request, p.cached] for p in covered], events), "a checkpoint")
        except Exception as exc:
            self._fail(batch, exc)
            return
        if after_checkpoint is not None and last >= 0:
            after_checkpoint()

    def _fail(self, batch: list[Pending], exc: BaseException) -> None:
        err = CheckpointError(f"the call ran, but its checkpoint could not be written: "
                              f"{type(exc).__name__}: {exc}")
        for p in batch:
            p.results = self.ex.error_results(err, p.name, p.num_returns, user_error=False)
            p.contained = []
