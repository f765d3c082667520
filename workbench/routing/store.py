"""Where routes live: the shared store (SQLite, or PostgreSQL for several replicas).

Every reader re-reads the routes at most ``REFRESH_S`` after its last read, so a route made
or changed by the CLI, the admin API, the Adapters tab or another replica applies to a running
server within a second or two, without a restart. Every write is one transaction (row-locked
on PostgreSQL), so two writers never lose an update; every change of weights goes to the
route audit with who made it. A ``routes.yaml`` left by an earlier release is imported once.
"""
from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import yaml
from sqlalchemy import Connection, delete, insert, select, update

from workbench.adapters.registry import Registry
from workbench.config import workbench_home
from workbench.errors import InputError, UnknownNameError, WorkbenchError
from workbench.routing.guard import GuardPolicy
from workbench.routing.routes import (BASE_ARM, DEFAULT_MARGIN, Arm, Route, assign, check_arm_ref,
                                      check_route, token_id)
from workbench.store.db import Database, StoreUnavailable, database_url
from workbench.store.schema import route_audit
from workbench.store.schema import routes as routes_table

log = logging.getLogger(__name__)
ROUTES_FILE = "routes.yaml"  # an earlier release's file, imported once
# A reader re-reads the routes at most this long after its last read (replicas converge).
REFRESH_S = 1.0


class RouteStore:
    """Routes in the shared store, re-read at most every ``REFRESH_S``, written in one
    transaction each (row-locked on PostgreSQL), so two writers never lose an update."""

    def __init__(self, home: Path | None = None, registry: Registry | None = None,
                 url: str | None = None) -> None:
        self.home = Path(home) if home else workbench_home()
        # The store of WORKBENCH_HOME (or WORKBENCH_DB_URL); another home's own file.
        self.db = Database(url=url) if url or home is None else Database(self.home / "workbench.sqlite")
        # When given, arms other than base must name a registered adapter version.
        self.registry = registry
        self._cache: tuple[float, dict[str, Route]] = (0.0, {})
        self._last_good: dict[str, Route] | None = None
        self._lock = threading.Lock()
        self._imported = False

    # ---- reading -----------------------------------------------------------------------
    def routes(self) -> dict[str, Route]:
        """Every route; read from the store when the last read is older than ``REFRESH_S``.
        While the database is away the last routes read keep serving (inference goes on)."""
        with self._lock:
            read_at, cached = self._cache
            if time.monotonic() - read_at >= REFRESH_S or not read_at:
                try:
                    with self.db.begin() as conn:
                        self._import_yaml(conn)
                        cached = self._last_good = self._read(conn)
                except StoreUnavailable:
                    if self._last_good is None:
                        raise
                    log.warning("routes: the database is away; serving the last routes read")
                    cached = self._last_good
                self._cache = (time.monotonic(), cached)
            return dict(cached)

    @staticmethod
    def _read(conn: Connection) -> dict[str, Route]:
        rows = conn.execute(select(routes_table.c.name, routes_table.c.body)).all()
        return {name: Route.from_yaml(name, json.loads(body)) for name, body in rows}

    def _import_yaml(self, conn: Connection) -> None:
        """An earlier release's routes.yaml goes into the store once (the file is renamed)."""
        path = self.home / ROUTES_FILE
        if self._imported or not path.exists():
            self._imported = True
            return
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            found = {str(n): Route.from_yaml(str(n), d or {}) for n, d in (data.get("routes") or {}).items()}
        except (yaml.YAMLError, KeyError, TypeError, ValueError, AttributeError, WorkbenchError) as exc:
            raise InputError(f"{path} is not a valid routes file: {exc}") from exc
        have = set(self._read(conn))
        for name, route in found.items():
            if name not in have:
                conn.execute(insert(routes_table).values(name=name, body=json.dumps(route.to_yaml()),
                                                         updated=route.updated or time.time()))
                self._audit(conn, name, "import", "local:routes.yaml", None, route.weights)
        path.rename(path.with_name(ROUTES_FILE + ".imported"))
        self._imported = True

    def names(self) -> list[str]:
        return sorted(self.routes())

    def get(self, name: str) -> Route:
        routes = self.routes()
        if name not in routes:
            raise UnknownNameError("route", name, routes)
        return routes[name]

    def find(self, name: str) -> Route | None:
        return self.routes().get(name)

    def resolve(self, model_name: str, user_key: str | None) -> str | None:
        """The arm for ``user_key`` if ``model_name`` is a route, else None."""
        route = self.find(model_name)
        return None if route is None else assign(route, user_key)

    # ---- writing -----------------------------------------------------------------------
    @contextlib.contextmanager
    def _locked(self) -> Iterator[tuple[Connection, dict[str, Route]]]:
        """Read-modify-write in one transaction; the caller changes the dict, it is written."""
        with self.db.begin() as conn:
            self._import_yaml(conn)
            query = select(routes_table.c.name, routes_table.c.body).with_for_update()
            before = {n: Route.from_yaml(n, json.loads(b)) for n, b in conn.execute(query).all()}
            routes = dict(before)
            yield conn, routes
            for name in before.keys() - routes.keys():
                conn.execute(delete(routes_table).where(routes_table.c.name == name))
            for name, route in routes.items():
                body = json.dumps(route.to_yaml())
                if name not in before:
                    conn.execute(insert(routes_table).values(name=name, body=body, updated=route.updated))
                elif route != before[name]:
                    conn.execute(update(routes_table).where(routes_table.c.name == name)
                                 .values(body=body, updated=route.updated))
        with self._lock:
            self._cache = (0.0, {})  # this process sees its own write at once

    @staticmethod
    def _audit(conn: Connection, route: str, action: str, who: str, before: dict | None,
               after: dict | None, note: str = "") -> None:
        conn.execute(insert(route_audit).values(
            at=time.time(), route=route, action=action, who=who, note=note or None,
            before=None if before is None else json.dumps(before),
            after=None if after is None else json.dumps(after)))

    def audit(self, route: str | None = None) -> list[dict]:
        """The audit entries (oldest first), for one route or all."""
        query = select(route_audit).order_by(route_audit.c.id)
        if route is not None:
            query = query.where(route_audit.c.route == route)
        with self.db.begin() as conn:
            rows = conn.execute(query).mappings().all()
        out = []
        for r in rows:
            entry = {"time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(r["at"])), "ts": r["at"],
                     "route": r["route"], "action": r["action"], "who": r["who"],
                     "before": json.loads(r["before"]) if r["before"] else None,
                     "after": json.loads(r["after"]) if r["after"] else None}
            if r["note"]:
                entry["note"] = r["note"]
            out.append(entry)
        return out

    def _check_refs(self, arms: tuple[Arm, ...]) -> None:
        if self.registry is None:
            return
        for arm in arms:
            if arm.ref != BASE_ARM:
                self.registry.resolve(arm.ref)  # UnknownNameError names the known ones

    def create(self, name: str, arms: tuple[Arm, ...], incumbent: str | None = None,
               seed: int = 0, margin: float = DEFAULT_MARGIN, who: str = "",
               guard: dict | None = None) -> Route:
        route = check_route(Route(name, tuple(arms), incumbent or (arms[0].ref if arms else ""),
                                  seed, margin, None, time.time(),
                                  GuardPolicy.parse(guard).as_dict() if guard else None))
        self._check_refs(route.arms)
        with self._locked() as (conn, routes):
            if name in routes:
                raise InputError(f"Route '{name}' exists; change it with `workbench routes set`.")
            routes[name] = route
            self._audit(conn, name, "create", who or token_id(None), None, route.weights)
        return route

    def set(self, name: str, arms: tuple[Arm, ...] | None = None, incumbent: str | None = None,
            margin: float | None = None, seed: int | None = None, who: str = "",
            action: str = "set", previous: str | None = ..., note: str = "",  # type: ignore[assignment]
            guard: dict | None = None) -> Route:
        """Change a route's weights (all arms at once) and/or settings; logged when weights change."""
        with self._locked() as (conn, routes):
            if name not in routes:
                raise UnknownNameError("route", name, routes)
            old = routes[name]
            changes: dict = {"updated": time.time()}
            if arms is not None:
                changes["arms"] = tuple(arms)
            if guard is not None:  # {} takes the guard off
                changes["guard"] = GuardPolicy.parse(guard).as_dict() if guard else None
            for key, value in (("incumbent", incumbent), ("margin", margin), ("seed", seed)):
                if value is not None:
                    changes[key] = value
            if previous is not ...:
                changes["previous"] = previous
            new = check_route(replace(old, **changes))
            self._check_refs(new.arms)
            routes[name] = new
            if new.weights != old.weights or new.seed != old.seed or new.incumbent != old.incumbent \
                    or new.guard != old.guard:
                self._audit(conn, name, action, who or token_id(None), old.weights, new.weights,
                            note or f"incumbent {new.incumbent}, seed {new.seed}")
        return new

    def delete(self, name: str, who: str = "") -> None:
        with self._locked() as (conn, routes):
            if name not in routes:
                raise UnknownNameError("route", name, routes)
            old = routes.pop(name)
            self._audit(conn, name, "delete", who or token_id(None), old.weights, None)

    def rollback(self, name: str, who: str = "") -> Route:
        """All traffic to the incumbent in one write; right after a promote, undo it instead."""
        route = self.get(name)
        target, previous = route.incumbent, route.previous
        if route.share(target) == 1.0 and previous and previous in route.weights:
            target, previous = previous, None  # the promotion itself is what is rolled back
        arms = tuple(Arm(a.ref, 100.0 if a.ref == target else 0.0) for a in route.arms)
        return self.set(name, arms, incumbent=target, previous=previous, who=who,
                        action="rollback", note=f"all traffic to {target}")

    def apply_promotion(self, name: str, candidate: str, who: str, note: str) -> Route:
        """All traffic to ``candidate``, which becomes the incumbent; the old incumbent is kept
        for rollback. The guarded-rollout rule is checked by ``route_report.promote`` first."""
        route = self.get(name)
        arms = tuple(Arm(a.ref, 100.0 if a.ref == candidate else 0.0) for a in route.arms)
        return self.set(name, arms, incumbent=candidate, previous=route.incumbent, who=who,
                        action="promote", note=note)

    def pick_candidate(self, name: str, candidate: str | None) -> str:
        return self._pick_candidate(self.get(name), candidate)

    @staticmethod
    def _pick_candidate(route: Route, candidate: str | None) -> str:
        if candidate is None:
            live = [r for r in route.candidates if route.weights[r] > 0] or route.candidates
            if len(live) != 1:
                raise InputError(f"Route '{route.name}' has {len(live)} candidate arms; name the "
                                 f"one to promote ({', '.join(route.candidates) or 'none'}).")
            return live[0]
        candidate = check_arm_ref(candidate)
        if candidate not in route.weights:
            raise UnknownNameError(f"arm of route '{route.name}'", candidate, route.weights)
        if candidate == route.incumbent:
            raise InputError(f"{candidate} is already the incumbent of route '{route.name}'.")
        return candidate


_stores: dict[str, RouteStore] = {}
_stores_lock = threading.Lock()


def default_store() -> RouteStore:
    """One store per database (WORKBENCH_DB_URL, else WORKBENCH_HOME's file), so its parsed
    cache is shared by every caller in the process."""
    key = database_url()
    with _stores_lock:
        if key not in _stores:
            _stores[key] = RouteStore()
        return _stores[key]


def resolve_route(model_name: str, user_key: str | None) -> str | None:
    """The arm ref (``name@version``, a name, or ``base``) a request for ``model_name`` goes to,
    sticky per ``user_key``; None when ``model_name`` is not a route."""
    return default_store().resolve(model_name, user_key)
