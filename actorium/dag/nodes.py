"""Lazy DAG nodes, as ``ray.dag``: ``f.bind(...)``, ``Actor.bind(...)``,
``node.method.bind(...)``, ``InputNode`` and ``MultiOutputNode``.

Binding only records the call. ``execute(*args, **kwargs)`` submits every node once,
upstream first, and returns what ``.remote()`` would: refs for calls, an actor handle
for an actor node, a list for ``MultiOutputNode``. Upstream refs are passed to
downstream calls as arguments, so the tasks wait for each other in the cluster, not in
the driver. Each ``execute`` is a fresh run: actors bound with ``Actor.bind`` are
created again (as in Ray); bind a live handle's method to reuse one actor.
"""
from __future__ import annotations

from typing import Any


class DAGNode:
    """A node of a lazy DAG. ``get_args``/``get_kwargs``/``get_options`` show what
    was bound; ``execute`` runs the DAG ending here."""

    def __init__(self, args: tuple = (), kwargs: dict | None = None,
                 options: dict | None = None):
        self._bound_args = tuple(args)
        self._bound_kwargs = dict(kwargs or {})
        self._bound_options = dict(options or {})

    def get_args(self) -> tuple:
        return self._bound_args

    def get_kwargs(self) -> dict:
        return dict(self._bound_kwargs)

    def get_options(self) -> dict:
        return dict(self._bound_options)

    def execute(self, *args, **kwargs):
        """Run the DAG ending at this node with ``args``/``kwargs`` as its input."""
        return _run(self, _input_value(args, kwargs))

    # What a node needs resolved before it runs, and how it runs given them.
    def _upstream(self) -> list:
        return _nodes_in((self._bound_args, self._bound_kwargs))

    def _execute_impl(self, input_value, results: dict):
        raise NotImplementedError

    def _resolved_arguments(self, results: dict) -> tuple[tuple, dict]:
        return (_substitute(self._bound_args, results),
                _substitute(self._bound_kwargs, results))


class _RemoteNode(DAGNode):
    """A node whose body has ``.options(...)`` and ``.remote(...)``: a remote function
    or an actor class."""

    def __init__(self, body, args, kwargs, options=None):
        super().__init__(args, kwargs, options)
        self._body = body

    def options(self, **options):
        """The same bound call with more options, as the body's ``.options``."""
        return type(self)(self._body, self._bound_args, self._bound_kwargs,
                          {**self._bound_options, **options})

    def _execute_impl(self, input_value, results):
        args, kwargs = self._resolved_arguments(results)
        body = self._body.options(**self._bound_options) if self._bound_options else self._body
        return body.remote(*args, **kwargs)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._body._name})"


class FunctionNode(_RemoteNode):
    """``f.bind(...)``: a task submitted on ``execute``."""


class ClassNode(_RemoteNode):
    """``Actor.bind(...)``: an actor created on ``execute``; ``node.method.bind(...)``
    binds a call of it."""

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        methods = self.__dict__["_body"]._methods
        if name not in methods:
            raise AttributeError(f"'{self._body._name}' has no method {name!r}; it has: "
                                 f"{', '.join(sorted(methods)) or 'none'}")
        return _UnboundClassMethod(self, name)


class _UnboundClassMethod:
    """``class_node.method``: ``.bind(...)`` it, optionally after ``.options(...)``."""

    def __init__(self, class_node: ClassNode, name: str, options: dict | None = None):
        self._class_node = class_node
        self._name = name
        self._options = options or {}

    def options(self, **options) -> "_UnboundClassMethod":
        return _UnboundClassMethod(self._class_node, self._name, {**self._options, **options})

    def bind(self, *args, **kwargs) -> "ClassMethodNode":
        return ClassMethodNode(self._class_node, self._name, args, kwargs, self._options)

    def __call__(self, *args, **kwargs):
        raise TypeError(f"Use {self._name}.bind(...) to add this method to the DAG.")


class ClassMethodNode(DAGNode):
    """A bound actor method call: of an actor node (``Actor.bind().m.bind()``) or of a
    live actor (``handle.m.bind()``)."""

    def __init__(self, actor, method: str, args, kwargs, options=None):
        super().__init__(args, kwargs, options)
        self._actor = actor  # a ClassNode, or the ActorMethod of a live handle
        self._method = method

    def _upstream(self) -> list:
        nodes = super()._upstream()
        return nodes + [self._actor] if isinstance(self._actor, ClassNode) else nodes

    def _execute_impl(self, input_value, results):
        args, kwargs = self._resolved_arguments(results)
        if isinstance(self._actor, ClassNode):
            method = getattr(results[id(self._actor)], self._method)
        else:
            method = self._actor
        if self._bound_options:
            method = method.options(**self._bound_options)
        return method.remote(*args, **kwargs)

    def __repr__(self) -> str:
        return f"ClassMethodNode({self._method})"


class DAGInputData:
    """The input of an ``execute`` given several arguments: ``[i]`` is the i-th
    positional one, ``["name"]`` and ``.name`` the keyword one."""

    def __init__(self, *args, **kwargs):
        self._args = list(args)
        self._kwargs = kwargs

    def __getitem__(self, key):
        if isinstance(key, int):
            return self._args[key]
        if isinstance(key, str):
            return self._kwargs[key]
        raise ValueError("DAG input fields are read with an int index or a str key")


class InputNode(DAGNode):
    """The DAG's input: what ``execute`` is given (its one argument, or all of them as
    a DAGInputData). ``inp[0]``, ``inp["key"]`` and ``inp.attr`` pick a part of it.
    Usually written ``with InputNode() as inp: dag = f.bind(inp)``."""

    def __init__(self, *args, **kwargs):
        if args or kwargs:
            raise ValueError("InputNode takes no arguments: pass the input to "
                             "dag.execute(...) instead.")
        super().__init__()
        self._attributes: dict = {}

    def __enter__(self) -> "InputNode":
        return self

    def __exit__(self, *exc) -> None:
        return None

    def __getattr__(self, key: str):
        if key.startswith("_"):
            raise AttributeError(key)
        return self._attribute(key, "attr")

    def __getitem__(self, key):
        if not isinstance(key, (int, str)) or isinstance(key, bool):
            raise TypeError(f"DAG input fields are read with an int index or a str key, "
                            f"not {type(key).__name__}")
        return self._attribute(key, "item")

    def _attribute(self, key, how: str) -> "InputAttributeNode":
        node = self._attributes.get((key, how))
        if node is None:
            node = self._attributes[(key, how)] = InputAttributeNode(self, key, how)
        return node

    def _execute_impl(self, input_value, results):
        return input_value

    def __repr__(self) -> str:
        return "InputNode()"


class InputAttributeNode(DAGNode):
    """One part of the DAG's input: ``inp[0]``, ``inp["key"]`` or ``inp.attr``."""

    def __init__(self, input_node: InputNode, key, how: str):
        super().__init__()
        self._input_node = input_node
        self._key = key
        self._how = how

    def _upstream(self) -> list:
        return [self._input_node]

    def _execute_impl(self, input_value, results):
        value = results[id(self._input_node)]
        try:
            if isinstance(value, DAGInputData) or self._how == "item":
                return value[self._key]
            return getattr(value, self._key)
        except (IndexError, KeyError, AttributeError, TypeError) as exc:
            raise ValueError(f"the DAG input has no field {self._key!r} "
                             f"(input: {value!r}): {exc}") from None

    def __repr__(self) -> str:
        return f"InputAttributeNode({self._key!r})"


class MultiOutputNode(DAGNode):
    """Several outputs of one DAG: ``execute`` returns a list, one result per node."""

    def __init__(self, outputs, options: dict | None = None):
        if not isinstance(outputs, (list, tuple)):
            raise TypeError("MultiOutputNode takes a list of DAG nodes")
        super().__init__((list(outputs),), {}, options)

    def _execute_impl(self, input_value, results):
        return _substitute(self._bound_args[0], results)

    def __repr__(self) -> str:
        return f"MultiOutputNode({len(self._bound_args[0])} outputs)"


# -- running a DAG ------------------------------------------------------------------
class _Unset:
    pass


def _input_value(args: tuple, kwargs: dict):
    if len(args) == 1 and not kwargs:
        return args[0]  # one input: the value itself, as Ray gives it
    if not args and not kwargs:
        return _Unset
    return DAGInputData(*args, **kwargs)


def _run(root: DAGNode, input_value) -> Any:
    """Execute every node the root depends on once, upstream first (iteratively: a
    long chain must not hit the recursion limit)."""
    order: list = []
    seen: set = set()
    stack: list = [(root, False)]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
            continue
        if id(node) in seen:
            continue
        seen.add(id(node))
        stack.append((node, True))
        stack.extend((n, False) for n in node._upstream() if id(n) not in seen)
    results: dict = {}
    for node in order:
        if isinstance(node, InputNode) and input_value is _Unset:
            raise TypeError("this DAG has an InputNode: pass its input to execute(...)")
        results[id(node)] = node._execute_impl(input_value, results)
    return results[id(root)]


def _nodes_in(value) -> list:
    """DAG nodes in ``value``, looking inside lists, tuples and dicts."""
    found: list = []
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, DAGNode):
            found.append(v)
        elif type(v) in (list, tuple):  # plain containers only, as _substitute rebuilds
            stack.extend(v)
        elif type(v) is dict:
            stack.extend(v.values())
    return found


def _substitute(value, results: dict):
    """``value`` with every DAG node replaced by what it executed to."""
    if isinstance(value, DAGNode):
        return results[id(value)]
    if type(value) is list:
        return [_substitute(v, results) for v in value]
    if type(value) is tuple:
        return tuple(_substitute(v, results) for v in value)
    if type(value) is dict:
        return {k: _substitute(v, results) for k, v in value.items()}
    return value
