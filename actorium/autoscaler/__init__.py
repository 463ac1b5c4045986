"""The node autoscaler: adds nodes for demand no node can hold and removes nodes that
stay idle, between ``min_nodes`` and ``max_nodes``, through a provider.

* ``provider.py``: the provider interface (create / terminate / list) and the ``local``
  provider, which starts real node processes on this machine;
* ``policy.py``: the decisions, as a pure function of the gcs's demand listing;
* ``monitor.py``: the process that runs the loop (``actorium start --head --autoscale``).

It sits above the raylet and the gcs and uses neither's internals (only the raylet's
process helpers): it talks to the gcs over the protocol (``ListState("demand")``,
``DrainNode``, the KV for its status) like any client.
"""
