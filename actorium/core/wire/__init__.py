"""The wire: every message declared once (``protocol``), the ZeroMQ sockets and their
authentication (``transport``, ``auth``, ``guard``). Knows nothing of values or tasks."""
