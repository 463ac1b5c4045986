"""The head's control store: node membership, the actor directory and its placement,
the function table, and the durable store of actorium.durable. A process of its own,
forked by the head node (``server.main``)."""
