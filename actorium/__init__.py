"""actorium: a distributed runtime for stateful actors and dynamic tasks, built for LLM
agents, with a Ray-compatible API (``import actorium as ray`` runs Ray Core scripts).

This is the top floor of the package (docs/architecture.md). Importing it also imports
``actorium.isolation`` and ``actorium.durable``, which register sandboxed and durable
execution with the core; Python runs this file before any ``actorium.*`` module, so
every process of a cluster has them registered.
"""
from actorium import exceptions
from actorium.core.actor import ActorClass, ActorHandle, method
from actorium.core.api import (
    available_resources, cancel, cluster_resources, get, get_actor, get_runtime_context,
    init, is_initialized, kill, nodes, put, remote, shutdown, wait,
)
from actorium import sandbox, util
from actorium import durable
from actorium.core.objects.object_ref import ObjectRef, ObjectRefGenerator
from actorium.core.remote_function import RemoteFunction
from actorium.durable.sessions import session
from actorium.isolation.policy import SandboxPolicy
from actorium.serve.api import (cluster_token, delete_deployment, deploy, deployments,
                                get_deployment_handle, http_url)
from actorium.serve.handle import Deployment, DeploymentHandle

ObjectID = ObjectRef  # Ray's older name for an object ref

__version__ = "0.1.0"

__all__ = [
    "ActorClass", "ActorHandle", "ObjectID", "ObjectRef", "ObjectRefGenerator", "RemoteFunction",
    "available_resources", "cancel", "cluster_resources", "exceptions", "get", "get_actor",
    "get_runtime_context", "init", "is_initialized", "kill", "method", "nodes", "put",
    "remote", "sandbox", "SandboxPolicy", "session", "shutdown", "util", "wait", "durable",
    "Deployment", "DeploymentHandle", "cluster_token", "delete_deployment", "deploy",
    "deployments", "get_deployment_handle", "http_url",
    "__version__",
]
