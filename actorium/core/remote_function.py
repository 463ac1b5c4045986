"""``@actorium.remote`` on a function: a RemoteFunction whose ``.remote()`` submits a task."""
from __future__ import annotations

import functools
import inspect

from actorium.core import binding
from actorium.core import options as opts
from actorium.core import runtimes, signatures
from actorium.core.ids import new_task_id, object_id_for
from actorium.core.objects.object_ref import _current
from actorium.core.owner import arguments
from actorium.core.owner.task_spec import TaskSpec, submit_and_return
from actorium.scheduling import placement


class RemoteFunction:
    def __init__(self, fn, options: opts.TaskOptions):
        if not callable(fn):
            raise TypeError(f"@actorium.remote needs a function or class, got {type(fn).__name__}")
        self._function = fn
        self._name = getattr(fn, "__qualname__", getattr(fn, "__name__", "task"))
        self._params = signatures.encode(fn)
        self._plain_arity = signatures.plain_arity(self._params)
        self._exported: tuple = (None, b"")  # (worker, fn_id): re-export per core worker
        functools.update_wrapper(self, fn, updated=())
        self._configure(options)

    def _configure(self, options: opts.TaskOptions) -> None:
        """Adopt ``options``; what every call needs from them is computed once here."""
        fn = self._function
        generator = inspect.isgeneratorfunction(fn) or inspect.isasyncgenfunction(fn)
        num_returns = options.num_returns
        if num_returns is None:  # Ray's default: a generator function streams
            num_returns = "streaming" if generator else 1
        elif num_returns in ("streaming", "dynamic") and not generator:
            raise TypeError(f"num_returns={num_returns!r} needs a generator function; "
                            f"{self._name} is not one")
        # decided here, once, so a call pays nothing for generator support
        self._num_returns = num_returns
        self._n_return_ids = 1 if num_returns in ("streaming", "dynamic") else num_returns
        self._options = options
        self._shape = options.shape()
        self._strategy = placement.normalize(options.scheduling_strategy)
        self._key = (tuple(sorted(self._shape.items())), placement.strategy_key(self._strategy))

    def __call__(self, *args, **kwargs):
        raise TypeError(f"Remote functions cannot be called directly. Instead of running "
                        f"'{self._name}()', try '{self._name}.remote()'.")

    def options(self, **kwargs) -> "RemoteFunction":
        new = RemoteFunction.__new__(RemoteFunction)
        new.__dict__.update(self.__dict__)
        new._configure(opts.build(opts.TaskOptions, self._options, **kwargs))
        return new

    def bind(self, *args, **kwargs):
        """A lazy call for a DAG (``actorium.dag``): runs on the DAG's ``execute``."""
        return binding.bind(self, args, kwargs)

    def remote(self, *args, **kwargs):
        o = self._options
        if self._params is not None and (kwargs or len(args) != self._plain_arity):
            signatures.check(self._name, self._params, args, kwargs)
        if o.isolation not in (None, "none"):
            return runtimes.isolation(o.isolation).submit_function(self, args, kwargs)
        cw = _current()
        worker, fn_id = self._exported
        if worker is not cw:
            fn_id = cw.export(self._function)
            self._exported = (cw, fn_id)
        task_id = new_task_id()
        packed = arguments.pack(args, kwargs, cw.put_serialized)
        return_ids = [object_id_for(task_id, i) for i in range(self._n_return_ids)]
        spec = TaskSpec(task_id, "task", o.name or self._name, packed.blob, packed.slots,
                        self._num_returns, return_ids, cw.job)
        spec.fn_id = fn_id
        spec.holds = packed.holds
        spec.shape = self._shape
        spec.key = self._key
        spec.strategy = self._strategy
        spec.retries_left = o.max_retries
        spec.retry_exceptions = o.retry_exceptions
        return submit_and_return(cw, spec, cw.submitter.submit)

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_exported"] = (None, b"")  # the core worker is per process
        return state

    def __repr__(self) -> str:
        return f"RemoteFunction({self._name})"

