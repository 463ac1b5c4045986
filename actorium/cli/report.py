"""``actorium status`` and ``actorium list``: what the cluster has and runs, as text."""
from __future__ import annotations

import os
import time

from actorium.cli.common import (list_state, node_objects, node_stats, plain, resolve_gcs,
                                 rpc)
from actorium.cli.serve_cmds import (DEPLOYMENT_HEADER, deployment_rows, print_status_section,
                                     read_deployments)
from actorium.core.wire import protocol, transport


def _fmt_bytes(n: float) -> str:
    n = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1024
    return f"{n:.2f} TiB"


def _fmt_amount(key: str, v: float) -> str:
    if key in ("memory", "object_store_memory"):
        return _fmt_bytes(v)
    return f"{v:g}"


def _fmt_used(key: str, total: float, available: float) -> str:
    used = max(0.0, total - available)
    if key in ("memory", "object_store_memory"):
        return f"{_fmt_bytes(used)}/{_fmt_bytes(total)}"
    return f"{used:g}/{total:g}"


def _resource_order(keys) -> list:
    first = [k for k in ("CPU", "GPU") if k in keys]
    last = [k for k in ("memory", "object_store_memory") if k in keys]
    return first + sorted(k for k in keys if k not in first and k not in last) + last


def _actor_class(info: dict) -> str:
    try:
        import msgpack
        return msgpack.unpackb(info.get("meta") or b"").get("class_name", "?")
    except Exception:
        return "?"


def _hex(v) -> str:
    return v.hex() if isinstance(v, (bytes, bytearray)) else str(v)


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(header, widths)).rstrip()]
    for r in rows:
        lines.append("  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip())
    return "\n".join(lines)


def cmd_status(args) -> int:
    gcs, current = resolve_gcs(args)
    nodes = list_state(gcs, "nodes")
    actors = list_state(gcs, "actors")
    alive = [n for n in nodes if n.get("alive")]
    session = os.path.basename(current["session_dir"]) if current else ""
    print(f"actorium cluster at {plain(gcs)}" + (f"  (session {session})" if session else ""))
    print(f"Nodes: {len(alive)} alive, {len(nodes) - len(alive)} dead")

    totals: dict = {}
    avails: dict = {}
    store_used = store_cap = store_objects = store_spilled = 0
    have_store = False
    for n in nodes:
        stats = node_stats(n) if n.get("alive") else None
        total = (stats or {}).get("total") or n.get("resources") or {}
        avail = (stats or {}).get("available") or n.get("available") or {}
        state = "alive" if n.get("alive") else "dead"
        parts = [f"{k} {_fmt_used(k, total[k], avail.get(k, 0.0) if n.get('alive') else total[k])}"
                 for k in _resource_order(total)]
        print(f"  node {n['node_id']}  {state}  pid {n.get('pid', '?')}")
        if n.get("alive"):
            print(f"    resources (used/total): {', '.join(parts)}")
            for k, v in total.items():
                totals[k] = totals.get(k, 0.0) + v
                avails[k] = avails.get(k, 0.0) + avail.get(k, 0.0)
        store = (stats or {}).get("store") or {}
        if store:
            have_store = True
            store_used += store.get("used", 0)
            store_cap += store.get("capacity", 0)
            store_objects += store.get("num_objects", 0)
            store_spilled += store.get("spilled", 0)
            workers = (stats or {}).get("workers") or {}
            if workers:
                print("    workers: " + ", ".join(f"{v} {k}" for k, v in sorted(workers.items())))

    print("Resources (used/total):")
    if totals:
        for k in _resource_order(totals):
            print(f"  {k}: {_fmt_used(k, totals[k], avails.get(k, 0.0))}")
    else:
        print("  (no live nodes)")
    if have_store:
        pct = 100.0 * store_used / store_cap if store_cap else 0.0
        print(f"Object store: {_fmt_bytes(store_used)} / {_fmt_bytes(store_cap)} used "
              f"({pct:.1f}%), {store_objects} objects, {_fmt_bytes(store_spilled)} spilled")
    else:
        print("Object store: (no node on this machine answered)")

    by_state: dict = {}
    for a in actors:
        by_state[a.get("state", "?")] = by_state.get(a.get("state", "?"), 0) + 1
    summary = ", ".join(f"{s}: {c}" for s, c in sorted(by_state.items()))
    print(f"Actors: {len(actors)}" + (f" ({summary})" if summary else ""))
    for a in sorted(actors, key=lambda a: (a.get("state") == "DEAD", a.get("name") or "")):
        name = a.get("name") or "(unnamed)"
        ns = f"  namespace {a['namespace']}" if a.get("name") and a.get("namespace") else ""
        detached = "  detached" if a.get("detached") else ""
        node = f"  node {a['node_id'][:12]}" if a.get("node_id") else ""
        print(f"  {a.get('state', '?'):<20} {name}  [{_actor_class(a)}]{ns}{detached}"
              f"  pid {a.get('pid') or '-'}{node}")
    print_status_section(gcs)
    _print_autoscaler(gcs)
    return 0


def _print_autoscaler(gcs: str) -> None:
    """The node autoscaler's configuration, nodes and last decisions, as it published
    them in the gcs KV (actorium/autoscaler/monitor.py)."""
    try:
        raw = rpc(gcs, protocol.KvGet(transport.next_req_id(), b"autoscaler/status"),
                  what="the gcs")
    except (TimeoutError, transport.RpcError):
        raw = None
    if not raw:
        print("Autoscaler: off")
        return
    import msgpack
    st = msgpack.unpackb(raw)
    node_res = st.get("node_resources") or {}
    print(f"Autoscaler: provider {st['provider']}, {len(st['nodes'])} node(s) "
          f"(min {st['min_nodes']}, max {st['max_nodes']}) of {node_res.get('CPU', 0):g} "
          f"CPU, idle timeout {st['idle_timeout']:g}s, {st.get('pending', 0)} pending "
          f"shape(s) unmet, pid {st.get('pid', '?')}")
    for node_id in st["nodes"]:
        print(f"  node {node_id}")
    if st["decisions"]:
        print("  recent decisions:")
    for when, text in st["decisions"][-10:]:
        print(f"    {time.strftime('%H:%M:%S', time.localtime(when))}  {text}")


def cmd_list(args) -> int:
    gcs, _ = resolve_gcs(args)
    if args.what == "nodes":
        rows = []
        for n in list_state(gcs, "nodes"):
            stats = node_stats(n)
            total = (stats or {}).get("total") or n.get("resources") or {}
            avail = (stats or {}).get("available") or n.get("available") or {}
            res = ", ".join(f"{k} {_fmt_used(k, total[k], avail.get(k, 0.0))}"
                            for k in _resource_order(total) if k in ("CPU", "GPU")
                            or k not in ("memory", "object_store_memory"))
            store = (stats or {}).get("store") or {}
            st = (f"{_fmt_bytes(store.get('used', 0))}/{_fmt_bytes(store.get('capacity', 0))}"
                  if store else "-")
            rows.append([n["node_id"], "ALIVE" if n.get("alive") else "DEAD",
                         str(n.get("pid", "")), res or "-", st])
        print(_table(rows, ["NODE_ID", "STATE", "PID", "RESOURCES (used/total)",
                            "OBJECT STORE"]))
    elif args.what == "objects":
        _list_objects(gcs)
    elif args.what == "deployments":
        deps, _ = read_deployments(gcs)
        print(_table(deployment_rows(deps), DEPLOYMENT_HEADER))
    else:
        _list_actors(gcs)
    return 0


def _list_actors(gcs: str) -> None:
    """The gcs's actor table, with each live actor's measured use from its raylet:
    CPU (cores) and memory, and for resources="auto" actors the current limits
    (cgroup CPU quota / memory limit; "-" where cgroups are not writable)."""
    actors = list_state(gcs, "actors")
    usage: dict = {}
    for n in list_state(gcs, "nodes"):
        if any(a.get("node_id") == n["node_id"] and a.get("state") == "ALIVE" for a in actors):
            usage.update((node_stats(n) or {}).get("actors") or {})
    rows, outgrown = [], []
    for a in actors:
        aid = _hex(a.get("actor_id", ""))
        u = usage.get(aid) if a.get("state") == "ALIVE" else None
        sizing = "auto" if a.get("auto") else "fixed"
        cpu = mem = limits = "-"
        if u:
            cpu, mem = f"{u['cpu']:.2f}", _fmt_bytes(u["memory"])
            if u.get("auto") and u.get("limited"):
                limits = f"{u['cpu_limit']:.2f} CPU, {_fmt_bytes(u['memory_limit'])}"
        if a.get("outgrown"):
            sizing = "auto OUTGROWN"
            outgrown.append(f"  {aid[:16]}: {a['outgrown']}")
        rows.append([aid[:16], a.get("name") or "-", a.get("namespace") or "-",
                     _actor_class(a), a.get("state", "?"), str(a.get("pid") or "-"),
                     "yes" if a.get("detached") else "no", sizing, cpu, mem, limits])
    print(_table(rows, ["ACTOR_ID", "NAME", "NAMESPACE", "CLASS", "STATE", "PID",
                        "DETACHED", "SIZING", "CPU", "MEMORY", "LIMITS (cpu, memory)"]))
    if outgrown:
        print("Actors that have outgrown their node:")
        print("\n".join(outgrown))


OBJECTS_PER_NODE = 1000


def _list_objects(gcs: str) -> None:
    """Objects in the nodes' shared-memory stores (values small enough to live inline in
    their owner's memory are not in any store and not listed)."""
    rows, silent = [], []
    for n in list_state(gcs, "nodes"):
        if not n.get("alive"):
            continue
        objects = node_objects(n, OBJECTS_PER_NODE)
        if objects is None:
            silent.append(n["node_id"])
            continue
        for o in objects:
            rows.append([o["object_id"], n["node_id"], _fmt_bytes(o["size"]), o["state"],
                         o["owner"][:16] or "-", "yes" if o["pinned"] else "no"])
    print(_table(rows, ["OBJECT_ID", "NODE_ID", "SIZE", "STATE", "OWNER", "PINNED"]))
    if silent:
        print(f"(nodes that did not answer: {', '.join(silent)})")
