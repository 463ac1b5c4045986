"""What ``import actorium`` offers, and Ray's module paths under it: the list is the
public API, so a change to it is deliberate."""
from __future__ import annotations

import importlib

import actorium

PUBLIC = {
    "ActorClass", "ActorHandle", "DynamicObjectRefGenerator", "ObjectID", "ObjectRef",
    "ObjectRefGenerator", "RemoteFunction", "SandboxPolicy", "__version__", "actor",
    "available_resources", "cancel", "cluster_resources", "dag", "durable", "exceptions",
    "experimental", "get", "get_actor", "get_runtime_context", "init", "is_initialized",
    "kill", "method", "nodes", "put", "remote", "remote_function", "runtime_context",
    "sandbox", "session", "shutdown", "util", "wait",
    # serve (deployments and HTTP, tests/serve/test_serve_exports.py)
    "Deployment", "DeploymentHandle", "cluster_token", "delete_deployment", "deploy",
    "deployments", "get_deployment_handle", "http_url",
}

RAY_PATHS = {
    "actorium.actor": {"ActorClass", "ActorHandle", "ActorMethod", "exit_actor", "method"},
    "actorium.remote_function": {"RemoteFunction"},
    "actorium.runtime_context": {"RuntimeContext", "get_runtime_context"},
    "actorium.util": {"ActorPool", "queue", "scheduling_strategies"},
    "actorium.util.queue": {"Empty", "Full", "Queue"},
    "actorium.dag": {"ClassMethodNode", "ClassNode", "DAGInputData", "DAGNode",
                     "FunctionNode", "InputAttributeNode", "InputNode", "MultiOutputNode"},
    "actorium.experimental": {"tqdm_ray"},
    "actorium.experimental.tqdm_ray": {"instance", "safe_print", "tqdm"},
}


def test_all_lists_exactly_the_public_api():
    assert set(actorium.__all__) == PUBLIC
    for name in actorium.__all__:
        assert hasattr(actorium, name), name


def test_ray_module_paths_export_what_they_list():
    for module_name, names in RAY_PATHS.items():
        module = importlib.import_module(module_name)
        assert set(module.__all__) == names, module_name
        for name in names:
            assert hasattr(module, name), f"{module_name}.{name}"
