"""The serve controller: one detached, named async actor per cluster that owns every
deployment's replicas, scales them and tells the routers where to send requests.

It is not on the request path. Routers (in each caller's process) call ``sync`` in a
loop: they report their load and learn new routing tables, a long poll that returns
as soon as a table changes. The controller's own loop samples the reported load every
``TICK_S``, asks ``policy.wanted_replicas`` and starts or drains replicas.
"""
from __future__ import annotations

import asyncio
import sys
import time

from actorium.serve import _runtime as rt
from actorium.serve import persistence
from actorium.serve import replicas as rp
from actorium.serve.config import DeploymentConfig
from actorium.serve.ingress import ensure_ingress
from actorium.serve.names import NAME, NAMESPACE, STATUS_KEY
from actorium.serve.policy import wanted_replicas

TICK_S = 0.05
ROUTER_TTL_S = 3.0          # a router silent this long is gone (its process exited)
DRAIN_TIMEOUT_S = 600.0     # a replica still busy after this is stopped anyway
START_BACKOFF_S = 1.0       # after a replica failed to start, before trying again
PIN_PUBLISH_S = 0.25        # new session pins are sent to routers at most this often


class _Router:
    __slots__ = ("seen", "reports")

    def __init__(self):
        self.seen = time.monotonic()
        self.reports: dict = {}


class ServeController:
    def __init__(self):
        self.deps: dict[str, rp.DeploymentState] = {}
        self.routers: dict[str, _Router] = {}
        self._changed: asyncio.Event | None = None
        self._restored: asyncio.Event | None = None
        self._loop_task = None
        self._session_locks: dict = {}
        self._status_written = 0.0
        if rt.restarted():  # take the deployments back now, not at the first call
            asyncio.get_running_loop().create_task(self._start())

    # -- plumbing ---------------------------------------------------------------
    async def _start(self) -> None:
        """Every entry point first waits for the restore of a restarted controller."""
        if self._loop_task is None:
            self._changed = asyncio.Event()
            self._restored = asyncio.Event()
            self._loop_task = asyncio.get_running_loop().create_task(self._run())
        await self._restored.wait()

    def _notify(self) -> None:
        """Wake every long poll: a table or the catalog changed."""
        self._changed.set()
        self._changed = asyncio.Event()

    def _catalog(self) -> dict:
        return {n: {"v": d.version, "route_prefix": d.config.route_prefix}
                for n, d in self.deps.items()}

    # -- called by deploy / delete_deployment / deployments -----------------------
    async def apply(self, config: dict, actor_cls, init_args: tuple, init_kwargs: dict,
                    timeout: float) -> dict:
        """Create or replace a deployment; wait for ``min_replicas`` to run."""
        await self._start()
        cfg = DeploymentConfig.from_dict(config)
        for other in self.deps.values():
            if other.name != cfg.name and cfg.route_prefix is not None \
                    and other.config.route_prefix == cfg.route_prefix:
                raise ValueError(f"route_prefix {cfg.route_prefix!r} is already used by "
                                 f"deployment {other.name!r}")
        old = self.deps.get(cfg.name)
        if old is not None:
            await self._retire(old, timeout)
        opts = {"resources": "auto"} if cfg.auto_resources else dict(cfg.resources or {})
        replica_cls = actor_cls.options(lifetime="detached", **opts) if not cfg.durable \
            else actor_cls.options(**opts)
        dep = rp.DeploymentState(cfg, replica_cls, tuple(init_args), dict(init_kwargs),
                                 rt.method_table(actor_cls), rt.class_name(actor_cls),
                                 rt.method_signatures(actor_cls))
        if old is not None:
            dep.version = old.version + 1
        self.deps[cfg.name] = dep
        persistence.save(dep, self.deps)
        self._status_written = 0.0
        for _ in range(cfg.min_replicas):
            self._start_replica(dep)
        self._notify()
        deadline = time.monotonic() + timeout
        while len(dep.pool(rp.RUNNING)) < cfg.min_replicas:
            if dep.error:
                raise RuntimeError(f"deployment {cfg.name!r}: a replica failed to start: "
                                   f"{dep.error}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"deployment {cfg.name!r}: {cfg.min_replicas} replica(s) "
                                   f"not running after {timeout}s")
            await self._wait_change(deadline - time.monotonic())
        return dep.table()

    async def delete(self, name: str, timeout: float) -> bool:
        await self._start()
        dep = self.deps.get(name)
        if dep is None:
            return False
        await self._retire(dep, timeout)
        self.deps.pop(name, None)
        persistence.forget(name, self.deps)
        self._status_written = 0.0
        self._notify()
        return True

    async def status(self) -> dict:
        await self._start()
        return {n: self._status_of(d) for n, d in self.deps.items()}

    # -- called by routers ----------------------------------------------------------
    async def sync(self, router_id: str, known: dict, reports: dict, wait_s: float) -> dict:
        """Record a router's load; answer with the catalog and every table of ``known``
        whose version moved, waiting up to ``wait_s`` for one to move."""
        await self._start()
        router = self.routers.get(router_id)
        if router is None:
            router = self.routers[router_id] = _Router()
        router.seen = time.monotonic()
        router.reports = reports
        for name, rep in reports.items():
            dep = self.deps.get(name)
            if dep is None:
                continue
            for key, rid in (rep.get("pins") or {}).items():
                if rid in dep.replicas and key not in dep.pins:
                    dep.pins[key] = rid
                    dep.pins_dirty = True
            now = time.monotonic()
            for rid in rep.get("dead") or ():
                self._lost(dep, rid)
            for key in rep.get("used") or ():
                dep.session_used[key] = now
            if rep.get("queued") and not dep.pool(rp.STARTING, rp.RUNNING):
                self._scale(dep, now)  # cold start: do not wait for the next tick
        deadline = time.monotonic() + max(0.0, min(float(wait_s), 5.0))
        while True:
            stale = {n: (self.deps[n].table() if n in self.deps else None)
                     for n, v in known.items()
                     if n not in self.deps or self.deps[n].version != v}
            if stale or time.monotonic() >= deadline:
                return {"catalog": self._catalog(), "tables": stale}
            await self._wait_change(deadline - time.monotonic())

    async def open_session(self, name: str, key: str, timeout: float):
        """The running actor of durable session ``key`` of ``name``: [rid, handle]."""
        await self._start()
        dep = self.deps.get(name)
        if dep is None or dep.deleting:
            raise ValueError(f"no deployment named {name!r}")
        lock = self._session_locks.setdefault((name, key), asyncio.Lock())
        async with lock:
            deadline = time.monotonic() + timeout
            while True:
                rep = dep.session_replica(key)
                if rep is not None and rep.state == rp.RUNNING:
                    dep.session_used[key] = time.monotonic()
                    return [rep.rid, rep.handle]
                draining = any(r.session == key for r in dep.replicas.values())
                if not draining:
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError(f"session {key!r} of {name!r} still stopping")
                await self._wait_change(deadline - time.monotonic())
            handle = rt.session(f"{name}/{key}", dep.actor_cls, *dep.init_args,
                                **dep.init_kwargs).actor
            rep = rp.Replica(rp.new_rid(name), handle, session=key)
            dep.replicas[rep.rid] = rep
            try:
                await asyncio.wait_for(rt.ready(handle), timeout)
            except BaseException:
                dep.replicas.pop(rep.rid, None)
                raise
            rep.running()
            dep.session_used[key] = time.monotonic()
            dep.bump()
            self._notify()
            return [rep.rid, rep.handle]

    # -- the loop -------------------------------------------------------------------
    async def _wait_change(self, timeout: float) -> None:
        try:
            await asyncio.wait_for(self._changed.wait(), max(0.0, timeout))
        except asyncio.TimeoutError:
            pass

    async def _run(self) -> None:
        try:
            self._restore()
        finally:
            self._restored.set()
        while True:
            await asyncio.sleep(TICK_S)
            now = time.monotonic()
            for rid in [r for r, st in self.routers.items() if now - st.seen > ROUTER_TTL_S]:
                del self.routers[rid]
            for dep in list(self.deps.values()):
                try:
                    self._tick(dep, now)
                except Exception as exc:  # keep serving the other deployments
                    dep.error = f"controller: {type(exc).__name__}: {exc}"
            if now - self._status_written > 1.0:
                self._status_written = now
                self._publish_status()

    def _load(self, dep) -> tuple[float, float, bool]:
        load = peak = 0.0
        waiting = False
        for router in self.routers.values():
            rep = router.reports.get(dep.name)
            if not rep:
                continue
            current = sum((rep.get("ongoing") or {}).values()) + rep.get("queued", 0)
            load += current
            peak += max(current, rep.get("peak", 0))
            waiting = waiting or rep.get("queued", 0) > 0
        return load, peak, waiting

    def _tick(self, dep, now: float) -> None:
        if dep.pins_dirty and now - dep.pins_sent > PIN_PUBLISH_S:
            # New session pins reach the other routers with the next table; batched,
            # since every new session would otherwise resend the table to all routers.
            dep.pins_dirty, dep.pins_sent = False, now
            dep.bump()
            self._notify()
        if not dep.deleting:
            self._scale(dep, now)
            self._park_idle_sessions(dep, now)
        self._finish_drains(dep, now)

    def _scale(self, dep, now: float) -> None:
        load, peak, waiting = self._load(dep)
        dep.history.add(now, load, peak)
        active = dep.pool(rp.STARTING, rp.RUNNING)
        cfg = dep.config
        want = wanted_replicas(dep.history, now, len(active), min_replicas=cfg.min_replicas,
                               max_replicas=cfg.max_replicas,
                               target=cfg.target_ongoing_requests,
                               idle_timeout_s=cfg.idle_timeout_s, waiting=waiting)
        if want > len(active):
            if dep.failures and now - dep.last_failure < START_BACKOFF_S * dep.failures:
                return
            for _ in range(want - len(active)):
                self._start_replica(dep)
        elif want < len(active):
            running = dep.pool(rp.RUNNING)
            ongoing = self._ongoing_by_replica(dep)
            pinned: dict = {}
            for rid in dep.pins.values():
                pinned[rid] = pinned.get(rid, 0) + 1
            # Stop the idlest first; among equals the one with fewest pinned sessions.
            running.sort(key=lambda r: (ongoing.get(r.rid, 0), pinned.get(r.rid, 0),
                                        -r.started))
            victims = running[:len(active) - want]
            for r in victims:
                self._drain(dep, r)

    def _ongoing_by_replica(self, dep) -> dict:
        out: dict = {}
        for router in self.routers.values():
            for rid, n in ((router.reports.get(dep.name) or {}).get("ongoing") or {}).items():
                out[rid] = out.get(rid, 0) + n
        return out

    def _park_idle_sessions(self, dep, now: float) -> None:
        if not dep.config.durable:
            return
        for r in list(dep.replicas.values()):
            if r.session and r.state == rp.RUNNING and \
                    now - dep.session_used.get(r.session, r.started) > dep.config.idle_timeout_s:
                self._drain(dep, r)

    def _drain(self, dep, replica) -> None:
        dep.bump()
        replica.draining(dep.version)
        for key in [k for k, rid in dep.pins.items() if rid == replica.rid]:
            del dep.pins[key]
        self._notify()

    def _lost(self, dep, rid: str) -> None:
        """A router saw the replica dead (crashed): forget it; load starts another."""
        r = dep.replicas.pop(rid, None)
        if r is None:
            return
        for key in [k for k, v in dep.pins.items() if v == rid]:
            del dep.pins[key]
        dep.bump()
        self._notify()

    def _finish_drains(self, dep, now: float) -> None:
        for r in [r for r in dep.replicas.values() if r.state == rp.DRAINING]:
            if now - r.drain_since < DRAIN_TIMEOUT_S and not self._drained(dep, r):
                continue
            dep.replicas.pop(r.rid, None)
            try:
                rt.kill(r.handle, no_restart=True)
            except Exception:
                pass
            self._notify()

    def _drained(self, dep, replica) -> bool:
        for router in self.routers.values():
            rep = router.reports.get(dep.name)
            if rep is None:
                continue
            if rep.get("v", 0) < replica.removed_version:
                return False
            if (rep.get("ongoing") or {}).get(replica.rid, 0):
                return False
        return True

    def _start_replica(self, dep) -> None:
        rid = rp.new_rid(dep.name)
        # Named, so that a restarted controller finds and adopts it.
        handle = dep.actor_cls.options(name=persistence.replica_name(dep.name, rid),
                                       namespace=NAMESPACE).remote(*dep.init_args,
                                                                   **dep.init_kwargs)
        self._adopt(dep, rp.Replica(rid, handle))

    def _adopt(self, dep, rep) -> None:
        dep.replicas[rep.rid] = rep
        asyncio.get_running_loop().create_task(self._await_ready(dep, rep))

    def _restore(self) -> None:
        """After a restart: deployments from their saved specs, with the replicas that
        still run; replicas of deployments gone are stopped; the ingress restarted."""
        try:
            specs = persistence.load()
            pool, sessions = persistence.running_replicas(NAMESPACE)
        except Exception:
            return  # a fresh cluster, or a gcs that does not answer: nothing to restore
        for spec in specs:
            cfg = DeploymentConfig.from_dict(spec["config"])
            dep = rp.DeploymentState(cfg, spec["actor_cls"], spec["init_args"],
                                     spec["init_kwargs"], spec["methods"],
                                     spec["class_name"], spec["signatures"])
            self.deps[cfg.name] = dep
            for rid, handle in pool.pop(cfg.name, []):
                self._adopt(dep, rp.Replica(rid, handle))
            for key, handle in sessions.get(cfg.name, []) if cfg.durable else ():
                self._adopt(dep, rp.Replica(rp.new_rid(cfg.name), handle, session=key))
        for leftovers in pool.values():
            for _, handle in leftovers:
                try:
                    rt.kill(handle, no_restart=True)
                except Exception:
                    pass
        ingress = persistence.load_ingress() if self.deps else None
        if ingress:
            loop = asyncio.get_running_loop()
            loop.run_in_executor(None, _quietly, ensure_ingress, ingress["host"],
                                 ingress["port"])

    async def _await_ready(self, dep, rep) -> None:
        try:
            await rt.ready(rep.handle)
        except Exception as exc:
            dep.replicas.pop(rep.rid, None)
            dep.failures += 1
            dep.last_failure = time.monotonic()
            dep.error = _summary(exc)
            dep.bump()
            self._notify()
            return
        if dep.replicas.get(rep.rid) is not rep:
            return
        rep.running()
        dep.failures, dep.error = 0, ""
        dep.bump()
        self._notify()

    async def _retire(self, dep, timeout: float) -> None:
        """Take a deployment out of service: drain and stop all its replicas."""
        dep.deleting = True
        for r in list(dep.replicas.values()):
            if r.state == rp.RUNNING:
                self._drain(dep, r)
        dep.bump()
        self._notify()
        deadline = time.monotonic() + timeout
        while any(r.state == rp.DRAINING for r in dep.replicas.values()) \
                and time.monotonic() < deadline:
            await self._wait_change(min(0.1, deadline - time.monotonic()))
        for r in list(dep.replicas.values()):
            try:
                rt.kill(r.handle, no_restart=True)
            except Exception:
                pass
        dep.replicas.clear()

    # -- status -----------------------------------------------------------------------
    def _status_of(self, dep) -> dict:
        load, _, _ = self._load(dep)
        queued = sum((r.reports.get(dep.name) or {}).get("queued", 0)
                     for r in self.routers.values())
        pool_running = dep.pool(rp.RUNNING)
        res = dep.config.resources or {}
        n = len(pool_running)
        return {"replicas": n, "starting": len(dep.pool(rp.STARTING)),
                "draining": len(dep.pool(rp.DRAINING)),
                "sessions": sum(1 for r in dep.replicas.values()
                                if r.session and r.state == rp.RUNNING),
                "ongoing": int(load - queued), "queued": int(queued),
                "route_prefix": dep.config.route_prefix,
                "min_replicas": dep.config.min_replicas,
                "max_replicas": dep.config.max_replicas,
                "cpu": "auto" if dep.config.auto_resources else res.get("num_cpus", 0) * n,
                "memory": "auto" if dep.config.auto_resources else res.get("memory", 0) * n,
                "class": dep.class_name, "error": dep.error}

    def _publish_status(self) -> None:
        """For ``actorium status`` / ``actorium list deployments`` (read from the gcs KV
        without joining the cluster as a driver)."""
        try:
            rt.kv_put(STATUS_KEY, {"time": time.time(),
                                   "deployments": {n: self._status_of(d)
                                                   for n, d in self.deps.items()}})
        except Exception:
            pass




def _quietly(fn, *args) -> None:
    """Run ``fn`` in the background; a failure goes to this process's log."""
    try:
        fn(*args)
    except Exception as exc:
        print(f"actorium serve: {getattr(fn, '__name__', fn)} failed: {_summary(exc)}",
              file=sys.stderr)


def _summary(exc: BaseException) -> str:
    """One line for a replica that failed to start: the error and, when the text holds a
    traceback (a constructor that raised), its last line — the user's exception."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    if not lines:
        return type(exc).__name__
    return lines[0] if len(lines) == 1 else f"{lines[-1]} ({lines[0]})"
