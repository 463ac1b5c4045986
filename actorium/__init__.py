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
# Ray's module paths (ray.actor, ray.remote_function, ray.runtime_context)
from actorium import actor, remote_function, runtime_context
# registers .bind() with the core (lazy DAGs)
from actorium import dag
# registers the driver's drawing of progress bars made in workers (tqdm_ray)
from actorium import experimental
from actorium import durable
from actorium.core.objects.object_ref import (
    DynamicObjectRefGenerator, ObjectRef, ObjectRefGenerator,
)
from actorium.core.remote_function import RemoteFunction
from actorium.durable.sessions import session
from actorium.isolation.policy import SandboxPolicy
from actorium.serve.api import (cluster_token, delete_deployment, deploy, deployments,
                                get_deployment_handle, http_url)
from actorium.serve.handle import Deployment, DeploymentHandle

ObjectID = ObjectRef  # Ray's older name for an object ref

__version__ = "0.1.0"

__all__ = [
    "ActorClass", "ActorHandle", "Deployment", "DeploymentHandle", "DynamicObjectRefGenerator",
    "ObjectID", "ObjectRef", "ObjectRefGenerator", "RemoteFunction", "SandboxPolicy",
    "__version__", "actor", "available_resources", "cancel", "cluster_resources",
    "cluster_token", "dag", "delete_deployment", "deploy", "deployments", "durable",
    "exceptions", "experimental", "get", "get_actor", "get_deployment_handle",
    "get_runtime_context", "http_url", "init", "is_initialized", "kill", "method", "nodes",
    "put", "remote", "remote_function", "runtime_context", "sandbox", "session", "shutdown",
    "util", "wait",
]
