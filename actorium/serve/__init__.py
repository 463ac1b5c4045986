"""actorium.serve: deployments that scale with load (and to zero), a handle-side router,
and an HTTP/SSE ingress. The public names are re-exported by ``actorium``."""
from actorium.serve.api import (cluster_token, delete_deployment, deploy, deployments,
                                get_deployment_handle, http_url)
from actorium.serve.handle import Deployment, DeploymentHandle

__all__ = ["Deployment", "DeploymentHandle", "cluster_token", "delete_deployment", "deploy",
           "deployments", "get_deployment_handle", "http_url"]
