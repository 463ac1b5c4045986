"""Resource arithmetic on {name: amount} dicts. Amounts are floats; a shape fits when
every requested amount is available. Availability may go negative transiently when a
blocked worker takes its CPU back (as in Ray), never through a new grant."""
from __future__ import annotations

EPS = 1e-9


def fits(shape: dict, available: dict) -> bool:
    return all(available.get(k, 0.0) + EPS >= v for k, v in shape.items())


def feasible(shape: dict, total: dict) -> bool:
    return fits(shape, total)


def subtract(available: dict, shape: dict) -> None:
    for k, v in shape.items():
        available[k] = available.get(k, 0.0) - v


def add(available: dict, shape: dict) -> None:
    for k, v in shape.items():
        available[k] = available.get(k, 0.0) + v


def cpu_part(shape: dict) -> dict:
    return {"CPU": shape["CPU"]} if shape.get("CPU") else {}
