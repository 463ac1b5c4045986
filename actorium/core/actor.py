"""``@actorium.remote`` on a class: ActorClass, ActorHandle and ActorMethod."""
from __future__ import annotations

import inspect

import msgpack

from actorium.core import binding
from actorium.core import options as opts
from actorium.core import runtimes, signatures
from actorium.core.ids import new_actor_id, new_task_id, object_id_for
from actorium.core.objects.object_ref import ObjectRef, _current, _rebuild_ref
from actorium.core.owner import arguments
from actorium.core.owner.task_spec import TaskSpec, submit_and_return
from actorium.core.wire import protocol, transport
from actorium.exceptions import ActorClassInheritanceException
from actorium.scheduling import placement


def method(*, num_returns=1, concurrency_group=None):
    """Decorator for actor methods, as ``ray.method``: ``@actorium.method(num_returns=2)``."""
    def wrap(fn):
        fn.__actorium_num_returns__ = num_returns
        return fn
    return wrap


def _method_table(cls) -> dict:
    table = {}
    for name, member in inspect.getmembers(cls):
        if name.startswith("__") and name not in ("__call__",):
            continue
        if not (inspect.isfunction(member) or inspect.ismethod(member)):
            continue
        num_returns = getattr(member, "__actorium_num_returns__", 1)
        if inspect.isgeneratorfunction(member) or inspect.isasyncgenfunction(member):
            num_returns = getattr(member, "__actorium_num_returns__", "streaming")
        # A plain function here is an instance method (drop self) unless declared static;
        # a classmethod comes bound, without cls already.
        params = signatures.encode(member, drop_first=inspect.isfunction(member) and not
                                   isinstance(inspect.getattr_static(cls, name), staticmethod))
        table[name] = {"num_returns": num_returns,
                       "is_async": inspect.iscoroutinefunction(member) or inspect.isasyncgenfunction(member),
                       "params": params, "arity": signatures.plain_arity(params)}
    return table


class ActorClass:
    """What ``@remote`` makes of a class. Like Ray's, it is an instance of a class derived
    from the user's, so ``Foo.CONST``, ``Foo.some_static(...)``, class methods and
    ``dir(Foo)`` reach the user's class (and its bases) through the decorated name, in
    the driver and inside the actor's own methods; subclassing it is refused."""

    def __new__(klass, cls=None, options: opts.ActorOptions | None = None):
        if klass is not ActorClass:  # Foo's own class called, e.g. cls() in a classmethod
            name = getattr(klass, "_user_name", klass.__qualname__)
            raise TypeError(f"Actors cannot be instantiated directly. Instead of "
                            f"'{name}()', use '{name}.remote()'.")
        self = object.__new__(_derived(cls))
        self.__dict__.update(_cls=cls, _options=options, _methods=_method_table(cls),
                             _name=cls.__qualname__, _exported=(None, b""),
                             __doc__=cls.__doc__)
        self.__dict__["_is_async"] = any(m["is_async"] for m in self._methods.values())
        return self

    def __init__(self, *args, **kwargs):
        pass  # built in __new__: a user's __init__ must not run on this object

    def __mro_entries__(self, bases):
        # ``class Bar(Foo)``: stand in a base whose metaclass refuses, knowing Bar's name.
        name = self._cls.__name__
        return (_NoSubclass(f"ActorClass({name})", (), {"_actor_class": name}),)

    # The user's class may define these for its instances; the actor class itself keeps
    # identity semantics (it is a key in caches) and is rebuilt from its parts.
    __eq__ = object.__eq__
    __hash__ = object.__hash__

    def __reduce_ex__(self, protocol):
        return _rebuild_actor_class, (self._cls, self._options)

    def __call__(self, *args, **kwargs):
        raise TypeError(f"Actors cannot be instantiated directly. Instead of "
                        f"'{self._name}()', use '{self._name}.remote()'.")

    def options(self, **kwargs) -> "ActorClass":
        new = object.__new__(type(self))
        new.__dict__.update(self.__dict__)
        new._options = opts.build(opts.ActorOptions, self._options, **kwargs)
        return new

    def remote(self, *args, **kwargs) -> "ActorHandle":
        return self._create(args, kwargs)

    def bind(self, *args, **kwargs):
        """A lazy actor for a DAG (``actorium.dag``): created on the DAG's ``execute``;
        bind its methods as ``node.method.bind(...)``."""
        return binding.bind(self, args, kwargs)

    def _create(self, args, kwargs, session: str = "") -> "ActorHandle":
        """Register and create the actor. ``session`` names the durable session it
        serves (actorium.session); its journal and checkpoints are keyed by it."""
        o = self._options
        init = getattr(self._cls, "__init__", None)
        if init is not None and init is not object.__init__:
            params = signatures.encode(init, drop_first=True)
            if params is not None:
                signatures.check(self._name, params, args, kwargs)
        if o.isolation not in (None, "none"):
            return runtimes.isolation(o.isolation).create_actor(self, args, kwargs)
        cw = _current()
        worker, class_id = self._exported
        if worker is not cw:
            class_id = cw.export(self._cls)
            self._exported = (cw, class_id)
        actor_id = new_actor_id()
        namespace = o.namespace if o.namespace is not None else cw.namespace
        runtime = self._runtime_config(actor_id, session)
        retries = o.task_retries(bool(runtime))
        max_concurrency = o.max_concurrency or (1000 if self._is_async else 1)
        ordered = not self._is_async and max_concurrency == 1
        counted = o.lifetime != "detached"
        meta = msgpack.packb({"class_name": self._name, "methods": self._methods,
                              "max_task_retries": retries,
                              "is_async": self._is_async, "ordered": ordered,
                              "owner": cw.owner_addr if counted else ""})
        info = cw.rpc_gcs(protocol.RegisterActor(
            transport.next_req_id(), actor_id, o.name or "", namespace,
            o.lifetime == "detached", o.get_if_exists, o.max_restarts, o.shape(), cw.job, meta,
            placement.normalize(o.scheduling_strategy), o.auto),
            timeout=30)
        if not info["created"]:
            return handle_from_info(info)
        packed = arguments.pack(args, kwargs, cw.put_serialized)
        spec = TaskSpec(new_task_id(), "create", f"{self._name}.__init__", packed.blob,
                        packed.slots, 1, [], cw.job)
        spec.holds = packed.holds
        spec.actor_id = actor_id
        token = None
        if counted:
            token = ObjectRef(_token_id(actor_id), cw.owner_addr)
            cw.refs.on_released[token.id] = lambda: cw.post(cw.actors.release, actor_id)
        handle = ActorHandle(actor_id, self._name, self._methods, retries, o.name or "",
                             ordered=ordered, token=token)

        def send_create(spec):
            init_msg = protocol.ActorInit(actor_id, class_id, self._name, spec.args,
                                          spec.resolved, max_concurrency, self._is_async,
                                          cw.gcs_addr, cw.job, 0, namespace, runtime)
            cw._send_gcs(protocol.CreateActor(actor_id, protocol.encode(init_msg)))

        cw.post(cw.actors.create, spec, send_create, retries, o.name or self._name)
        return handle

    def _runtime_config(self, actor_id: bytes, session: str) -> dict:
        """The ActorInit ``runtime`` field: the first registered actor runtime that
        claims this actor, with its configuration; {} for a plain actor."""
        for runtime in runtimes.actor_runtimes():
            config = runtime.configure(self, actor_id, session)
            if config:
                return {**config, "name": runtime.name}
        return {}

    def __repr__(self) -> str:
        return f"ActorClass({self._name})"


class _NoSubclass(type):
    def __new__(mcs, name, bases, namespace):
        for base in bases:
            if "_actor_class" in base.__dict__:
                raise ActorClassInheritanceException(
                    f"Attempted to define subclass '{name}' of actor class "
                    f"'{base._actor_class}'. Inheriting from actor classes is not currently "
                    f"supported. You can instead inherit from a non-actor base class and "
                    f"make the derived class an actor class (with @actorium.remote).")
        return super().__new__(mcs, name, bases, namespace)


def _derived(cls) -> type:
    """``class ActorClass(Foo)(ActorClass, Foo)``: attribute lookups not answered by
    ActorClass fall through to the user's class. A class that cannot be combined (a
    conflicting C layout) gets a plain ActorClass."""
    namespace = {"__module__": cls.__module__, "__qualname__": f"ActorClass({cls.__qualname__})",
                 "_user_name": cls.__qualname__}
    if hasattr(cls, "__del__"):
        namespace["__del__"] = lambda self: None  # the user's finalizer is for actors
    try:
        return type(f"ActorClass({cls.__name__})", (ActorClass, cls), namespace)
    except TypeError:
        return type(f"ActorClass({cls.__name__})", (ActorClass,), namespace)


def _rebuild_actor_class(cls, options):
    return ActorClass(cls, options)


def _token_id(actor_id: bytes) -> bytes:
    """The id of an actor's lifetime token: an object id (16 bytes) no task produces."""
    return actor_id + b"\xfe\xfe\xfe\xfe"


class ActorHandle:
    """A reference to an actor. Picklable: pass it to tasks and other actors.

    A non-detached actor lives while any handle to it exists anywhere, as in Ray: each
    handle holds a ref to the actor's token, an object its creator owns, so copies in
    other processes are borrowers counted by the ownership protocol (ownership.py), and
    when the last is gone the creator stops the actor after its pending calls, freeing
    its name. ``ordered``: the actor runs one call at a time, so this caller's calls
    are sent in submission order even while their arguments are pending (async and
    threaded actors get each call as soon as its arguments are ready, as in Ray)."""

    def __init__(self, actor_id: bytes, class_name: str, methods: dict, max_task_retries: int,
                 name: str = "", ordered: bool = True, token: ObjectRef | None = None):
        self._actor_id = actor_id
        self._class_name = class_name
        self._methods = methods
        self._max_task_retries = max_task_retries
        self._name = name
        self._ordered = ordered
        self._token = token  # None: detached, or not counted

    def __getattr__(self, item):
        if item.startswith("__") and item.endswith("__"):
            raise AttributeError(item)
        methods = self.__dict__.get("_methods", {})
        if item not in methods:
            raise AttributeError(f"'{self.__dict__.get('_class_name')}' actor has no method "
                                 f"{item!r}; it has: {', '.join(sorted(methods)) or 'none'}")
        info = methods[item]
        return ActorMethod(self, item, info["num_returns"], b"", info.get("params"),
                           info.get("arity", -1))

    # Ray's built-in methods of every actor: ready once constructed; exit after the calls
    # sent before; run ``fn(actor_instance, *args, **kwargs)`` inside the actor.
    @property
    def __ray_ready__(self) -> "ActorMethod":
        return ActorMethod(self, "__ray_ready__", 1)

    @property
    def __ray_terminate__(self) -> "ActorMethod":
        return ActorMethod(self, "__ray_terminate__", 1)

    @property
    def __ray_call__(self) -> "ActorMethod":
        return ActorMethod(self, "__ray_call__", 1)

    def __reduce__(self):
        # The token pickles as a nested ref: the receiver becomes a borrower.
        return (ActorHandle, (self._actor_id, self._class_name, self._methods,
                              self._max_task_retries, self._name, self._ordered, self._token))

    def __repr__(self) -> str:
        return f"Actor({self._class_name}, {self._actor_id.hex()})"

    def __eq__(self, other):
        return isinstance(other, ActorHandle) and other._actor_id == self._actor_id

    def __hash__(self):
        return hash(self._actor_id)

    @property
    def actor_id(self) -> bytes:
        return self._actor_id


class ActorMethod:
    def __init__(self, handle: ActorHandle, name: str, num_returns, request_key: bytes = b"",
                 params: list | None = None, arity: int = -1):
        self._handle = handle
        self._name = name
        self._num_returns = num_returns
        self._request_key = request_key
        self._params = params  # signatures.encode form; None: not checked here
        self._arity = arity

    def __call__(self, *args, **kwargs):
        raise TypeError(f"Actor methods cannot be called directly. Instead of running "
                        f"'actor.{self._name}()', try 'actor.{self._name}.remote()'.")

    def options(self, num_returns=None, request_id=None, **kwargs):
        """``request_id`` (durable actors and sessions): the caller's own identity of this
        request. Sending it again, even from a new driver or after the whole cluster
        restarted, continues or answers that request instead of starting a new one."""
        unknown = set(kwargs) - {"name", "concurrency_group", "enable_task_events"}
        if unknown:
            raise ValueError(f"Invalid option(s) {sorted(unknown)} for an actor method; valid: "
                             f"num_returns, name, request_id, concurrency_group, "
                             f"enable_task_events")
        key = self._request_key
        if request_id is not None:
            if not isinstance(request_id, str) or not request_id:
                raise TypeError(f"request_id must be a non-empty str, got {request_id!r}")
            key = b"id:" + request_id.encode()
        return ActorMethod(self._handle, self._name,
                           self._num_returns if num_returns is None else num_returns, key,
                           self._params, self._arity)

    def bind(self, *args, **kwargs):
        """A lazy call of this actor's method for a DAG (``actorium.dag``)."""
        return binding.bind(self, args, kwargs)

    def remote(self, *args, **kwargs):
        h = self._handle
        if self._params is not None and (kwargs or len(args) != self._arity):
            signatures.check(f"{h._class_name}.{self._name}", self._params, args, kwargs)
        cw = _current()
        task_id = new_task_id()
        packed = arguments.pack(args, kwargs, cw.put_serialized)
        n = 1 if self._num_returns in ("streaming", "dynamic") else self._num_returns
        return_ids = [object_id_for(task_id, i) for i in range(n)]
        spec = TaskSpec(task_id, "actor", f"{h._class_name}.{self._name}", packed.blob,
                        packed.slots, self._num_returns, return_ids, cw.job)
        spec.holds = packed.holds
        spec.actor_id = h._actor_id
        spec.method = self._name
        spec.retries_left = h._max_task_retries
        spec.request_key = self._request_key
        spec.ordered = h._ordered
        return submit_and_return(cw, spec, cw.actors.submit)


def exit_actor() -> None:
    """End the actor this is called in, as ``ray.actor.exit_actor``: it is not restarted,
    the call that ran this and every queued call fail with ActorDiedError, and the
    process's atexit handlers run. Never returns."""
    cw = _current()
    actor_id = cw.current_actor_id
    if not actor_id:
        raise TypeError("exit_actor() can only be called inside an actor; use "
                        "actorium.kill(handle) to stop an actor from outside")
    import atexit
    import os
    import sys
    try:
        atexit._run_exitfuncs()
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        # DEAD without restart before we go: otherwise our exit looks like a crash
        try:
            cw.rpc_gcs(protocol.KillActor(transport.next_req_id(), actor_id, True),
                       timeout=10)
        finally:
            os._exit(0)


def handle_from_info(info: dict) -> ActorHandle:
    """A handle for an actor looked up in the gcs (by name); it counts as a borrower of
    the actor's token, as a handle passed in would."""
    meta = msgpack.unpackb(info["meta"])
    owner = meta.get("owner", "")
    token = _rebuild_ref(_token_id(info["actor_id"]), owner) if owner else None
    return ActorHandle(info["actor_id"], meta["class_name"], meta["methods"],
                       meta["max_task_retries"], info.get("name", ""),
                       ordered=meta.get("ordered", True), token=token)
