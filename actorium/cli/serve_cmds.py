"""The CLI's part of serve: ``start --head --http-port N``, ``list deployments`` and the
deployments section of ``status``.

Deployment status is read from the gcs key-value table, where the serve controller
publishes it every second, so these commands need not join the cluster as a driver.
"""
from __future__ import annotations

import time

import msgpack

from actorium.cli.common import CliError, plain, rpc
from actorium.core.wire import protocol, transport
from actorium.serve.names import STATUS_KEY


def read_deployments(gcs: str) -> tuple[dict, float]:
    """(name -> status, age of that status in seconds); ({}, 0) without deployments."""
    try:
        raw = rpc(gcs, protocol.KvGet(transport.next_req_id(), STATUS_KEY), what="the gcs")
    except (TimeoutError, transport.RpcError):
        return {}, 0.0
    if not raw:
        return {}, 0.0
    doc = msgpack.unpackb(raw)
    return doc.get("deployments") or {}, max(0.0, time.time() - doc.get("time", time.time()))


def deployment_rows(deps: dict) -> list[list[str]]:
    rows = []
    for name, st in sorted(deps.items()):
        rows.append([name, st.get("route_prefix") or "-", st.get("class", "?"),
                     f"{st['replicas']}" + (f" (+{st['starting']} starting)"
                                            if st.get("starting") else "")
                     + (f" (-{st['draining']} draining)" if st.get("draining") else ""),
                     f"{st['min_replicas']}..{st['max_replicas']}", str(st.get("sessions", 0)),
                     str(st.get("ongoing", 0)), str(st.get("queued", 0)),
                     (st.get("error") or "")[:60]])
    return rows


DEPLOYMENT_HEADER = ["NAME", "ROUTE", "CLASS", "REPLICAS", "MIN..MAX", "SESSIONS",
                     "ONGOING", "QUEUED", "ERROR"]


def print_status_section(gcs: str) -> None:
    deps, age = read_deployments(gcs)
    print(f"Deployments: {len(deps)}" + (f"  (as of {age:.0f}s ago)" if deps else ""))
    for name, st in sorted(deps.items()):
        print(f"  {name}  route {st.get('route_prefix') or '-'}  replicas {st['replicas']} "
              f"(min {st['min_replicas']}, max {st['max_replicas']}; "
              f"{st.get('starting', 0)} starting, {st.get('draining', 0)} draining)  "
              f"sessions {st.get('sessions', 0)}  ongoing {st.get('ongoing', 0)}  "
              f"queued {st.get('queued', 0)}" + (f"  error: {st['error']}"
                                                  if st.get("error") else ""))


def start_http(gcs_tcp: str, host: str, port: int) -> str:
    """Start the HTTP ingress of the cluster at ``gcs_tcp``, as a short-lived driver."""
    from actorium.core import api
    from actorium.serve.ingress import ensure_ingress
    try:
        api.init(address=plain(gcs_tcp))
    except Exception as exc:
        raise CliError(f"could not connect to start the HTTP ingress: {exc}") from None
    try:
        return ensure_ingress(host, port)
    except Exception as exc:
        raise CliError(f"the HTTP ingress did not start on {host}:{port}: "
                       f"{str(exc).splitlines()[-1]}") from None
    finally:
        api.shutdown()
