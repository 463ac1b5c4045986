"""The node daemon: leases, the worker pool and its zygote, resources, spillback, object
transfer between nodes, and the relay to the node's sandbox service. ``node.py`` is the
node process, which also forks the gcs on the head."""
