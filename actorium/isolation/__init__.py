"""Sandbox isolation: data-only codec, seccomp filter, jail, policy and snippet runner.

See DESIGN.md section 5 and docs/security.md.  Everything that executes untrusted code
goes through ``jail.enter_jail``; everything that comes back goes through ``codec``.
Importing the package registers ``isolation="sandbox"`` with the core (integration.py).
"""
from actorium.isolation import integration  # noqa: F401
