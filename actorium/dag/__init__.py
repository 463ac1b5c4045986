"""Lazy DAGs with Ray's names (``ray.dag``): bind calls now, ``execute`` them later.

    with InputNode() as inp:
        dag = combine.bind(f.bind(inp), Model.bind(2).forward.bind(inp))
    actorium.get(dag.execute(3))

Importing this package registers the ``.bind`` of remote functions, actor classes and
actor methods with the core (``actorium.core.binding``); ``import actorium`` does it.
"""
from actorium.core import binding as _binding
from actorium.core.actor import ActorClass as _ActorClass
from actorium.core.actor import ActorMethod as _ActorMethod
from actorium.core.remote_function import RemoteFunction as _RemoteFunction
from actorium.dag.nodes import (
    ClassMethodNode, ClassNode, DAGInputData, DAGNode, FunctionNode, InputAttributeNode,
    InputNode, MultiOutputNode,
)


def _build(target, args: tuple, kwargs: dict) -> DAGNode:
    if isinstance(target, _RemoteFunction):
        return FunctionNode(target, args, kwargs)
    if isinstance(target, _ActorClass):
        return ClassNode(target, args, kwargs)
    if isinstance(target, _ActorMethod):
        return ClassMethodNode(target, target._name, args, kwargs)
    raise TypeError(f"bind() is not supported on {type(target).__name__}")


_binding.register(_build)

__all__ = ["ClassMethodNode", "ClassNode", "DAGInputData", "DAGNode", "FunctionNode",
           "InputAttributeNode", "InputNode", "MultiOutputNode"]
