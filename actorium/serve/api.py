"""The public calls of serve: ``deploy``, ``deployments``, ``delete_deployment``,
``get_deployment_handle``, ``http_url`` and ``cluster_token``."""
from __future__ import annotations

from actorium.exceptions import DeploymentError
from actorium.serve import _runtime as rt
from actorium.serve.client import client, delete_deployment, deployments
from actorium.serve.config import DeploymentConfig
from actorium.serve.controller import ServeController
from actorium.serve.handle import Deployment, DeploymentHandle
from actorium.serve.ingress import ensure_ingress
from actorium.serve.names import NAME, NAMESPACE

__all__ = ["cluster_token", "delete_deployment", "deploy", "deployments",
           "get_deployment_handle", "http_url"]

DEPLOY_TIMEOUT_S = 120.0


def deploy(cls, *init_args, name: str, route_prefix: str | None = None,
           min_replicas: int = 1, max_replicas: int = 1, target_ongoing_requests: float = 2,
           max_ongoing_requests: int | None = None, idle_timeout_s: float = 60,
           max_queued_requests: int = 1000, resources=None, durable: bool = False,
           api_keys=None, timeout: float = DEPLOY_TIMEOUT_S, **init_kwargs) -> Deployment:
    """Run ``cls`` (a class or an ``@actorium.remote`` class) as a deployment: a set of
    replicas, built with ``cls(*init_args, **init_kwargs)``, that scales between
    ``min_replicas`` and ``max_replicas`` on load (see docs/elasticity.md), behind
    ``Deployment.handle`` and, with ``route_prefix``, HTTP. Deploying an existing name
    replaces it. Returns once ``min_replicas`` replicas run."""
    cfg = DeploymentConfig.build(
        name, route_prefix=route_prefix, min_replicas=min_replicas, max_replicas=max_replicas,
        target_ongoing_requests=target_ongoing_requests,
        max_ongoing_requests=max_ongoing_requests, idle_timeout_s=idle_timeout_s,
        max_queued_requests=max_queued_requests, resources=resources, durable=durable,
        api_keys=api_keys)
    actor_cls = rt.as_actor_class(cls)
    if durable and actor_cls._is_async:
        raise ValueError(f"deploy(durable=True): {rt.class_name(actor_cls)} has async "
                         f"methods; durable sessions need a synchronous class")
    if not rt.method_table(actor_cls):
        raise ValueError(f"deploy(): {rt.class_name(actor_cls)} has no public method to call")
    controller = _start_controller()
    try:
        rt.get(controller.apply.remote(cfg.to_dict(), actor_cls, init_args, init_kwargs,
                                       timeout), timeout=timeout + 10)
    except (TimeoutError, RuntimeError, ValueError) as exc:
        raise DeploymentError(str(exc).splitlines()[-1] if str(exc) else repr(exc)) from None
    if route_prefix is not None:
        http_url()
    return Deployment(name, cfg.route_prefix)


def get_deployment_handle(name: str) -> DeploymentHandle:
    """The handle of a running deployment, from any process of the cluster."""
    client().router(name)  # raises DeploymentError when absent
    return DeploymentHandle(name)


def http_url(*, host: str = "127.0.0.1", port: int = 0) -> str:
    """The base URL of the cluster's HTTP ingress, starting it on the head node if it is
    not running (on ``host``:``port``; 0 picks a free port)."""
    return ensure_ingress(host, port)


def cluster_token() -> str:
    """The cluster token this process uses: the bearer token HTTP callers present.
    Treat it as a secret (it also opens every TCP port of the cluster)."""
    if rt.current_worker() is None:
        raise RuntimeError("actorium is not initialized: call actorium.init() first")
    return rt.process_token().value


def _start_controller():
    """The cluster's controller actor, created (detached) if it is not running. It
    restarts without limit, and calls cut off by a restart are sent again (its calls are
    safe to repeat): deployments outlive the controller's process."""
    cls = rt.remote(ServeController).options(
        name=NAME, namespace=NAMESPACE, lifetime="detached", get_if_exists=True,
        max_concurrency=10000, max_restarts=-1, max_task_retries=-1)
    return cls.remote()
