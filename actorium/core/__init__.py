"""The core: the library every driver and worker runs. API objects, options, the wire
(protocol, transport, auth), ownership of objects, submission of tasks and actor calls,
and the worker's execution loop.

It is the ground floor above the object store and the scheduling policy: it imports no
other actorium package. Ways of running work that live above it (sandboxes, durable
actors) register with it through ``runtimes.py``.
"""
