"""The executing side of a worker process: runs pushed tasks and actor calls.

The main thread reads the worker's task socket and runs work inline (tasks and
plain actors), in a thread pool (threaded actors) or on an asyncio loop (async actors).
Replies go straight to the caller's owner endpoint. The process's CoreWorker (its own
I/O thread) makes the worker an owner of whatever it submits or puts itself.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import os
import signal
import sys
import threading
import traceback
import types

import zmq

from actorium.core import runtimes, stats
from actorium.core.ids import object_id_for
from actorium.core.objects import serialization
from actorium.core.objects.serialization import VALUE_ERROR, VALUE_INLINE, VALUE_STORED
from actorium.core.owner import arguments
from actorium.core.wire import protocol, transport
from actorium.core.worker import core_worker
from actorium.core.worker.output import LineForwarder, LogFile
from actorium.exceptions import TaskCancelledError


class Executor:
    def __init__(self, cw: core_worker.CoreWorker, task_addr: str):
        self.cw = cw
        self.pid = os.getpid()
        self.router, self.task_addr = transport.bind_router_at(task_addr)
        self.functions: dict[bytes, object] = {}
        self.instance = None
        self.actor_id = b""
        self.actor_name = ""
        self.pool = None
        self.loop = None
        self.semaphore = None
        self.name = "worker"
        self.running: bytes = b""
        # Calls cancelled before or while they ran (insertion-ordered, bounded: a cancel
        # that arrives after its call finished leaves an entry nobody removes).
        self.cancelled: dict[bytes, None] = {}
        # The task whose user code the main thread is in right now: only it may be
        # interrupted, so a late signal never hits the executor or the next task.
        self.interruptible: bytes = b""
        self.async_calls: dict = {}  # task id -> asyncio.Task of a running async call
        self.main_ident = threading.get_ident()
        self.step_call = None  # the journal Call of the running request (durable actors)
        self.hosted = None     # the instance as a registered ActorRuntime hosts it (runtimes.py)
        cw.executor = self
        cw.on_block = self._blocked
        cw.on_unblock = self._unblocked
        cw.on_cancel = self._cancel

    # -- raylet notifications -------------------------------------------------
    def _blocked(self):
        transport.send(self.cw.raylet_addr, protocol.WorkerBlocked(self.cw.worker_id))

    def _unblocked(self):
        transport.send(self.cw.raylet_addr, protocol.WorkerUnblocked(self.cw.worker_id))

    def _cancel(self, task_id: bytes, force: bool) -> None:
        """Runs on the I/O thread; Ray's semantics. A task not started yet never runs; a
        running task gets KeyboardInterrupt in its user code (``force``: the process is
        killed); an async actor's call is cancelled as an asyncio task; a running call
        of a sync or threaded actor is not interrupted (actors have state) but sees
        ``get_runtime_context().is_canceled()``. Either way the caller's ``get`` raises
        TaskCancelledError unless the call had already finished."""
        if force and not self.actor_id:
            os.kill(os.getpid(), signal.SIGKILL)
        self.cancelled[task_id] = None
        if len(self.cancelled) > 10_000:
            del self.cancelled[next(iter(self.cancelled))]
        if self.loop is not None:
            self.loop.call_soon_threadsafe(self._cancel_async, task_id)
        elif not self.actor_id:
            self._interrupt(task_id, 0.01)

    def _interrupt(self, task_id: bytes, again_after: float) -> None:
        """I/O thread: SIGINT the main thread while ``task_id`` runs there. Sent again
        until it lands: a signal that arrives just after the main thread released the
        GIL and before it entered a blocking call (sleep, select) only sets Python's
        flag, which nobody reads until that call returns."""
        if task_id == self.interruptible and task_id in self.cancelled:
            signal.pthread_kill(self.main_ident, signal.SIGINT)
            self.cw.call_later(again_after, self._interrupt, task_id, min(again_after * 2, 1.0))

    def _on_interrupt(self, signum, frame) -> None:
        """SIGINT handler (main thread): interrupt the running task if it is the one
        cancelled; a signal that arrives after it finished is ignored."""
        task_id = self.interruptible
        if task_id and task_id in self.cancelled:
            self.interruptible = b""
            raise KeyboardInterrupt(f"task {self.name} was cancelled")

    def _cancel_async(self, task_id: bytes) -> None:
        task = self.async_calls.get(task_id)
        if task is not None:
            task.cancel()

    def was_cancelled(self, task_id: bytes) -> bool:
        """Whether ``task_id`` was cancelled; forgets it (each call asks once)."""
        return self.cancelled.pop(task_id, 0) is None

    # -- main loop ------------------------------------------------------------
    def run(self) -> None:
        signal.signal(signal.SIGINT, self._on_interrupt)
        handlers = transport.message_only({
            protocol.PushTask: self.execute_task, protocol.ActorInit: self.init_actor,
            protocol.ActorCall: self.dispatch_call})
        router = self.router
        while True:
            try:
                router.poll()
            except zmq.ZMQError:
                return
            for identity, data in transport.pending(router, True):
                transport.dispatch(handlers, identity, data, "actorium worker")

    def function(self, fn_id: bytes):
        fn = self.functions.get(fn_id)
        if fn is None:
            data = self.cw.rpc_gcs(protocol.KvGet(transport.next_req_id(), b"fn:" + fn_id))
            if data is None:
                raise RuntimeError(f"function {fn_id.hex()} is not in the function table")
            import pickle
            fn = self.functions[fn_id] = pickle.loads(data)
        return fn

    def arguments(self, blob: bytes, refs: list):
        return arguments.unpack(blob, refs, self.cw.materialize)

    # -- results --------------------------------------------------------------
    def pack(self, task_id: bytes, index: int, value, owner: str, contained: list) -> list:
        ser = serialization.serialize(value)
        for ref in ser.contained:
            self._hand_over(ref, owner)
            contained.append([ref.id, ref.owner])
        if ser.size <= serialization.INLINE_MAX:
            return [VALUE_INLINE, ser.to_bytes(), ser.size]
        oid = object_id_for(task_id, index)
        self.cw.store_put(oid, ser.parts)
        return [VALUE_STORED, oid, ser.size, self.cw.raylet_addr]

    def _hand_over(self, ref, caller: str) -> None:
        """Register the caller as borrower of a ref nested in a result, before replying."""
        if ref.owner == caller:
            return
        if ref.owner == self.cw.owner_addr:
            self.cw.refs.borrower_delta(ref.id, caller, 1)
        else:
            transport.send(ref.owner, protocol.AddBorrower(ref.id, caller))

    def pack_returns(self, task_id, result, num_returns, owner):
        contained: list = []
        if result.__class__ is types.GeneratorType:
            result = _static_items(result, num_returns)  # Ray: its items are the returns
        if num_returns == 1:
            return [self.pack(task_id, 0, result, owner, contained)], contained
        if num_returns == 0:
            return [], contained
        if not isinstance(result, (tuple, list)) or len(result) != num_returns:
            raise ValueError(f"Task returned {type(result).__name__} but num_returns="
                             f"{num_returns} requires a sequence of that length.")
        return [self.pack(task_id, i, v, owner, contained) for i, v in enumerate(result)], contained

    def error_results(self, exc, name, num_returns, user_error=True):
        blob = serialization.error_blob(exc, name, self.pid, user_error=user_error)
        n = num_returns if isinstance(num_returns, int) else 1
        return [[VALUE_ERROR, blob, 0]] * max(1, n)

    def reply(self, owner: str, task_id: bytes, results, contained) -> None:
        transport.send(owner, protocol.TaskReply(task_id, results, self.cw.worker_id, contained))

    # -- running one task or actor call ----------------------------------------
    def run_call(self, msg, name: str, target) -> None:
        """Run one pushed task or actor call and reply to its owner."""
        results, contained = self.compute(msg, name, target)
        self.reply(msg.owner, msg.task_id, results, contained)

    def compute(self, msg, name: str, target):
        """Run one pushed task or actor call; return (results, contained) for its reply.

        ``target()`` returns the callable (looked up inside the try, so a missing function
        or method is the caller's error). Cancellation is reported as a runtime error,
        anything else the callable raises as the user's."""
        contained: list = []
        task_id = msg.task_id
        if self.cancelled and self.was_cancelled(task_id):
            return self.cancelled_results(name, msg.num_returns), contained
        try:
            fn = target()
            args, kwargs = self.arguments(msg.args, msg.refs)
            if not self.actor_id:
                # set, then check: a cancel arriving in between either sees this task
                # interruptible (and signals) or is seen here
                self.interruptible = task_id
                if task_id in self.cancelled:
                    raise KeyboardInterrupt(f"task {name} was cancelled")
            try:
                if msg.num_returns.__class__ is str:  # "streaming" or "dynamic"
                    results = _stream_end(self.stream(task_id, fn(*args, **kwargs), msg.owner,
                                                      msg.num_returns == "dynamic"))
                else:
                    results, contained = self.pack_returns(
                        task_id, fn(*args, **kwargs), msg.num_returns, msg.owner)
            finally:
                self.interruptible = b""
        except BaseException as exc:
            results = self.error_results(_strip(exc), name, msg.num_returns)
            self.record_failure(name, task_id, exc)
        # A task cancelled while it ran ends cancelled, whatever its code made of the
        # interrupt; an actor call is never interrupted and keeps its outcome.
        if self.cancelled and self.was_cancelled(task_id) and not self.actor_id:
            return self.cancelled_results(name, msg.num_returns), []
        return results, contained

    def record_failure(self, name: str, task_id: bytes, exc: BaseException) -> None:
        """Keep a failed call's traceback for the dashboard (sent with the metrics)."""
        text = "".join(traceback.format_exception(type(exc), exc, _strip(exc).__traceback__))
        stats.record_failure(name, task_id, text, self.pid, self.actor_name)

    def cancelled_results(self, name: str, num_returns) -> list:
        return self.error_results(TaskCancelledError(f"{name} was cancelled"), name,
                                  num_returns, user_error=False)

    def execute_task(self, msg) -> None:
        self.name = msg.name
        self.cw.current_task_id = msg.task_id
        self.cw.job, self.cw.namespace = msg.job, msg.namespace
        self.running = msg.task_id
        try:
            self.run_call(msg, msg.name, lambda: self.function(msg.fn_id))
        finally:
            self.running = b""
            self.cw.current_task_id = b""

    def stream(self, task_id: bytes, gen, owner: str, dynamic: bool = False) -> int:
        """Send each yielded value as it is produced; a failure becomes the last item,
        or, for ``"dynamic"`` (whose caller sees only the whole), the call's error."""
        if not inspect.isgenerator(gen):
            raise TypeError("num_returns='streaming' or 'dynamic' requires a generator "
                            "function")
        index = 0
        hosted = self.hosted
        try:
            for item in gen:
                if hosted is not None:
                    item = hosted.chunk(index, item)
                self._send_item(task_id, index, item, owner)
                index += 1
                if task_id in self.cancelled:
                    # An actor's call is never interrupted, but a cancelled stream stops
                    # at its next yield: closing the generator runs its finally blocks
                    # (an SSE client that went away must not keep a replica busy).
                    gen.close()
                    raise TaskCancelledError(f"{self.name} was cancelled")
        except BaseException as exc:
            return self._stream_failed(task_id, index, exc, owner, dynamic)
        return index

    def _stream_failed(self, task_id: bytes, index: int, exc: BaseException, owner: str,
                       dynamic: bool) -> int:
        """A generator raised after ``index`` items: a stream gets the error as its last
        item (the count returned includes it); a dynamic call, whose caller sees only the
        whole, fails instead."""
        if dynamic:
            raise exc
        self._send_item_error(task_id, index, exc, owner)
        return index + 1

    def _send_item(self, task_id: bytes, index: int, item, owner: str) -> None:
        result = self.pack(task_id, index + 1, item, owner, [])
        transport.send(owner, protocol.StreamItem(task_id, index, result))

    def _send_item_error(self, task_id: bytes, index: int, exc, owner: str) -> None:
        blob = serialization.error_blob(_strip(exc), self.name, self.pid)
        transport.send(owner, protocol.StreamItem(task_id, index, [VALUE_ERROR, blob, 0]))

    # -- actors -------------------------------------------------------------------
    def init_actor(self, msg) -> None:
        self.actor_id = msg.actor_id
        self.actor_name = msg.name
        self.name = msg.name
        self.cw.current_actor_id = msg.actor_id
        self.cw.restarts = msg.restarts
        self.cw.job, self.cw.namespace = msg.job, msg.namespace
        try:
            cls = self.function(msg.class_id)
            args, kwargs = self.arguments(msg.args, msg.refs)
            if msg.is_async:
                self._start_loop(msg.max_concurrency)
                fut = asyncio.run_coroutine_threadsafe(_construct_async(cls, args, kwargs), self.loop)
                self.instance = fut.result()
            else:
                self.instance = cls(*args, **kwargs)
                if msg.max_concurrency > 1:
                    self.pool = concurrent.futures.ThreadPoolExecutor(
                        msg.max_concurrency, thread_name_prefix="actorium-actor")
            if msg.runtime:
                self.hosted = runtimes.actor_runtime(msg.runtime["name"]).host(self, msg.runtime)
                self.hosted.restore()  # before ActorReady: no call sees the fresh state
                self.call = self.hosted.call
        except BaseException as exc:
            blob = serialization.error_blob(_strip(exc), f"{msg.name}.__init__", self.pid)
            transport.send(msg.gcs, protocol.ActorWorkerExited(
                msg.actor_id, "the actor's constructor raised", blob))
            # The gcs handles one peer's messages in order: once this ping is answered it
            # has recorded the constructor error, before the raylet reports our exit.
            transport.rpc(msg.gcs, protocol.Ping(transport.next_req_id()), timeout=10)
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(0)
        transport.send(msg.gcs, protocol.ActorReady(
            msg.actor_id, self.task_addr, self.cw.owner_addr, self.cw.worker_id,
            self.cw.node_id, self.pid))

    def _start_loop(self, max_concurrency: int) -> None:
        ready = threading.Event()

        def run():
            self.loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self.loop)
            self.semaphore = asyncio.Semaphore(max_concurrency)
            ready.set()
            self.loop.run_forever()
        threading.Thread(target=run, name="actorium-asyncio", daemon=True).start()
        ready.wait()

    def dispatch_call(self, msg) -> None:
        if self.loop is not None:
            asyncio.run_coroutine_threadsafe(self.call_async(msg), self.loop)
        elif self.pool is not None:
            self.pool.submit(self.call, msg)
        else:
            self.call(msg)

    def _method(self, name: str):
        if name in ("__actorium_ready__", "__ray_ready__"):
            return lambda: True
        if name == "__ray_call__":
            return lambda fn, *args, **kwargs: fn(self.instance, *args, **kwargs)
        if name == "__ray_terminate__":
            return self._terminate
        return getattr(self.instance, name)

    def _terminate(self) -> None:
        """Ray's ``__ray_terminate__``: the calls sent before it have run (one caller's
        calls arrive in order); the gcs marks the actor dead for good and stops this
        worker, so later calls fail with ActorDiedError instead of restarting it."""
        self.cw.rpc_gcs(protocol.KillActor(transport.next_req_id(), self.actor_id, True),
                        timeout=10)

    def call(self, msg) -> None:
        if self.pool is None:
            self.running = msg.task_id
        try:
            self.run_call(msg, f"{self.actor_name}.{msg.method}", lambda: self._method(msg.method))
        finally:
            self.running = b""

    async def call_async(self, msg) -> None:
        task_id = msg.task_id
        name = f"{self.actor_name}.{msg.method}"
        self.async_calls[task_id] = asyncio.current_task()
        try:
            if self.was_cancelled(task_id):
                raise asyncio.CancelledError
            async with self.semaphore:
                results, contained = await self._run_async(msg, name)
        except asyncio.CancelledError:
            self.was_cancelled(task_id)
            results, contained = self.cancelled_results(name, msg.num_returns), []
        finally:
            self.async_calls.pop(task_id, None)
        self.reply(msg.owner, task_id, results, contained)

    async def _run_async(self, msg, name: str):
        """One async-actor call's results; asyncio cancellation passes through."""
        contained: list = []
        try:
            method = self._method(msg.method)
            args, kwargs = self.arguments(msg.args, msg.refs)
            if msg.num_returns.__class__ is str:  # "streaming" or "dynamic"
                results = _stream_end(await self.stream_async(
                    msg.task_id, method(*args, **kwargs), msg.owner,
                    msg.num_returns == "dynamic"))
            else:
                result = method(*args, **kwargs)
                if inspect.isawaitable(result):
                    result = await result
                results, contained = self.pack_returns(
                    msg.task_id, result, msg.num_returns, msg.owner)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            results = self.error_results(_strip(exc), name, msg.num_returns)
            self.record_failure(name, msg.task_id, exc)
        return results, contained

    async def stream_async(self, task_id, gen, owner, dynamic: bool = False) -> int:
        if inspect.isgenerator(gen):
            return self.stream(task_id, gen, owner, dynamic)
        index = 0
        try:
            async for item in gen:
                self._send_item(task_id, index, item, owner)
                index += 1
        except BaseException as exc:
            return self._stream_failed(task_id, index, exc, owner, dynamic)
        return index


def _static_items(gen, num_returns: int):
    """A generator run with an int ``num_returns``: exactly that many items."""
    items = list(gen)
    if len(items) != num_returns:
        raise ValueError(f"The generator yielded {len(items)} values, but num_returns="
                         f"{num_returns}; use num_returns='streaming' or 'dynamic' for a "
                         f"count known only at run time.")
    return items[0] if num_returns == 1 else items


def _stream_end(count: int) -> list:
    """The final reply of a streaming call: a None value whose size field is the item count."""
    return [[VALUE_INLINE, b"PN.", count]]


async def _construct_async(cls, args, kwargs):
    return cls(*args, **kwargs)


def _strip(exc: BaseException) -> BaseException:
    """Drop our own executor frames from the traceback the caller will see."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename == __file__:
        tb = tb.tb_next
    return exc.with_traceback(tb) if tb is not None else exc


def main(config: dict) -> None:
    """Entry point of a worker forked by the zygote. Never returns."""
    code = 0
    try:
        cw = core_worker.CoreWorker(
            kind="worker", session_dir=config["session_dir"], job="",
            node_id=config["node_id"], raylet_addr=config["raylet_addr"],
            gcs_addr=config["gcs_addr"], store_root=config["store_root"],
            worker_id=bytes.fromhex(config["worker_id"]),
            store_capacity=config.get("store_capacity", 0), spill_dir=config.get("spill_dir"),
            host=config.get("host", ""))
        core_worker.set_global_worker(cw)
        executor = Executor(cw, transport.endpoint(config["session_dir"], config.get("host", ""),
                                                   f"t-{cw.worker_id.hex()}"))
        task_addr = executor.task_addr
        log = LogFile(os.path.join(config["session_dir"], "logs",
                                   f"worker-{config['worker_id']}.log"))
        sys.stdout = LineForwarder(cw.raylet_addr, "stdout", executor, log)
        sys.stderr = LineForwarder(cw.raylet_addr, "stderr", executor, log)
        cw.rpc_raylet(protocol.RegisterClient(
            transport.next_req_id(), cw.worker_id, os.getpid(), "worker", task_addr,
            cw.owner_addr, ""), timeout=60)
        executor.run()
    except BaseException:
        traceback.print_exc(file=sys.__stderr__)
        code = 1
    finally:
        os._exit(code)
