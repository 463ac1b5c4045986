"""Scheduling policy as pure functions: resource arithmetic and the choice of a node.

It sits below the core, the gcs and the raylet, which all take it from here: the core
turns a user's strategy into its wire form, the raylet spills lease requests with it and
the gcs places actors with it. It imports nothing of actorium.
"""
