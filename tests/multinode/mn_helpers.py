"""Remote functions shared by the multi-node tests."""
from __future__ import annotations

import actorium


@actorium.remote(num_cpus=0)
def node_of():
    return actorium.get_runtime_context().get_node_id()
