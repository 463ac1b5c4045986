"""The names the serve layer's actors and records are found by, cluster-wide.

At the bottom of serve so that the controller, the routers' client and the ingress can
all name each other without importing each other."""

NAME = "actorium-serve-controller"
NAMESPACE = "actorium-serve"
STATUS_KEY = b"actorium-serve:status"
