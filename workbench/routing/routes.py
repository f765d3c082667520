"""A/B routes: virtual model names whose traffic is split over weighted arms.

A route such as ``cs-support`` sends 90% of its users to ``cs-support@v2`` (the incumbent)
and 10% to ``cs-support@v3`` (the candidate). Arms are ``name@version`` refs, an adapter
name, or ``base``. Routes live in ``WORKBENCH_HOME/routes.yaml``; every reader re-reads the
file when its modification time, size or inode changes, so an edit from the CLI, the admin
API or the Adapters tab applies to a running server without a restart.

Assignment is sticky and documented: a user key ``k`` on route ``r`` with seed ``s`` gets
``u = int(sha256(f"{s}:{r}:{k}")[:8 bytes], big-endian) / 2**64``, a number in [0, 1) that
depends on nothing else; the arms with weight > 0, in stored order, split [0, 1) into
consecutive slices proportional to their weights, and the user gets the arm whose slice holds
``u``. The same user therefore keeps the same arm while the weights stay the same; changing
the seed reshuffles everyone.

Every change of weights is appended to ``WORKBENCH_HOME/routes-audit.jsonl`` with its time,
the route, the action, the weights before and after, and who made it (an admin token id,
never the token itself).
"""
from __future__ import annotations

import contextlib
import fcntl
import getpass
import hashlib
import json
import os
import secrets
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import yaml

from workbench.adapters.registry import SAFE_NAME, Registry, parse_ref
from workbench.config import workbench_home
from workbench.errors import InputError, UnknownNameError, WorkbenchError

ROUTES_FILE = "routes.yaml"
AUDIT_FILE = "routes-audit.jsonl"
BASE_ARM = "base"
# Points of resolution rate the candidate's lower bound may sit below the incumbent's rate.
DEFAULT_MARGIN = 0.02


class PromoteRefused(WorkbenchError):
    """The guarded-rollout rule does not allow promoting this candidate (yet)."""

    exit_code = 4


@dataclass(frozen=True)
class Arm:
    """One destination of a route."""

    # ``name@version``, an adapter name, or ``base``.
    ref: str
    # Relative share of the traffic (0 keeps the arm listed but sends it nothing).
    weight: float


@dataclass(frozen=True)
class Route:
    """A virtual model name and how its traffic is split."""

    # The model name clients send.
    name: str
    # Weighted arms, in assignment order.
    arms: tuple[Arm, ...]
    # The arm the rollout is guarding (the "old" version); rollback sends everything here.
    incumbent: str
    # Seed of the assignment hash.
    seed: int = 0
    # Promote needs: candidate lower bound >= incumbent rate - margin (a proportion).
    margin: float = DEFAULT_MARGIN
    # The incumbent before the last promote, so a rollback can undo a promotion.
    previous: str | None = None
    # Unix time of the last change.
    updated: float = 0.0

    @property
    def weights(self) -> dict[str, float]:
        return {a.ref: a.weight for a in self.arms}

    @property
    def candidates(self) -> list[str]:
        return [a.ref for a in self.arms if a.ref != self.incumbent]

    def share(self, ref: str) -> float:
        total = sum(a.weight for a in self.arms)
        return self.weights.get(ref, 0.0) / total if total else 0.0

    def to_yaml(self) -> dict:
        data = asdict(self)
        data.pop("name")
        data["arms"] = [{"ref": a.ref, "weight": a.weight} for a in self.arms]
        return data

    @classmethod
    def from_yaml(cls, name: str, data: dict) -> "Route":
        arms = tuple(Arm(str(a["ref"]), float(a["weight"])) for a in data.get("arms") or [])
        return check_route(cls(name, arms, str(data.get("incumbent") or (arms[0].ref if arms else "")),
                               int(data.get("seed", 0)), float(data.get("margin", DEFAULT_MARGIN)),
                               data.get("previous"), float(data.get("updated", 0.0))))


def unit_hash(seed: int, route: str, user_key: str) -> float:
    """The documented assignment hash: a user's fixed point in [0, 1) on one route."""
    digest = hashlib.sha256(f"{seed}:{route}:{user_key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def assign(route: Route, user_key: str | None) -> str:
    """The arm ``user_key`` gets; without a key every call draws afresh (not sticky)."""
    live = [a for a in route.arms if a.weight > 0]
    u = unit_hash(route.seed, route.name, user_key) if user_key else secrets.randbelow(2**53) / 2.0**53
    total, cum = sum(a.weight for a in live), 0.0
    for arm in live:
        cum += arm.weight / total
        if u < cum:
            return arm.ref
    return live[-1].ref  # float rounding of the last slice's end


def check_arm_ref(ref: str) -> str:
    ref = str(ref).strip()
    if ref in (BASE_ARM, "__base__"):
        return BASE_ARM
    try:
        parse_ref(ref)
    except WorkbenchError as exc:
        raise InputError(f"Invalid route arm {ref!r}: use name@version, an adapter name or "
                         "'base'.") from exc
    return ref


def check_route(route: Route) -> Route:
    """Refuse a malformed route with a message naming the problem; return it normalised."""
    if not SAFE_NAME.match(route.name or "") or ".." in route.name:
        raise InputError(f"Invalid route name {route.name!r}: letters, digits, '-', '_', '.', "
                         "at most 64 characters.")
    arms = tuple(Arm(check_arm_ref(a.ref), float(a.weight)) for a in route.arms)
    refs = [a.ref for a in arms]
    if len(arms) < 1:
        raise InputError(f"Route '{route.name}' needs at least one arm.")
    if len(set(refs)) != len(refs):
        raise InputError(f"Route '{route.name}' names an arm twice: {', '.join(refs)}.")
    if any(a.weight < 0 or a.weight != a.weight for a in arms):
        raise InputError(f"Route '{route.name}': weights must be 0 or more.")
    if sum(a.weight for a in arms) <= 0:
        raise InputError(f"Route '{route.name}': at least one arm needs a weight above 0.")
    incumbent = check_arm_ref(route.incumbent) if route.incumbent else refs[0]
    if incumbent not in refs:
        raise InputError(f"Route '{route.name}': the incumbent {incumbent} is not one of its "
                         f"arms ({', '.join(refs)}).")
    if not 0.0 <= route.margin <= 1.0:
        raise InputError(f"Route '{route.name}': the margin is a proportion in [0, 1], "
                         f"not {route.margin}.")
    return replace(route, arms=arms, incumbent=incumbent)


def parse_arms(spec: str | list[str] | tuple[str, ...]) -> tuple[Arm, ...]:
    """``"cs-support@v2=90,cs-support@v3=10"`` (or a list of ``ref=weight``) -> arms."""
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    arms = []
    for item in (i.strip() for i in items):
        if not item:
            continue
        ref, sep, weight = item.rpartition("=") if "=" in item else (item, "", "")
        if not sep:
            raise InputError(f"Arm {item!r} needs a weight: write it as REF=WEIGHT, "
                             "e.g. cs-support@v3=10.")
        try:
            arms.append(Arm(check_arm_ref(ref), float(weight)))
        except ValueError:
            raise InputError(f"Arm {item!r}: the weight {weight!r} is not a number.") from None
    return tuple(arms)


def token_id(token: str | None) -> str:
    """Who made a change, for the audit log: a short digest of the admin token, never the token."""
    if not token:
        try:
            return "local:" + getpass.getuser()
        except (KeyError, OSError):  # no passwd entry (some containers)
            return "local:unknown"
    return "tok-" + hashlib.sha256(token.encode()).hexdigest()[:10]  # as the API logs it


@dataclass
class _Cache:
    stamp: tuple[int, int, int] | None = None
    routes: dict[str, Route] = field(default_factory=dict)


class RouteStore:
    """Routes in one YAML file, re-read when it changes, written atomically under a file lock."""

    def __init__(self, home: Path | None = None, registry: Registry | None = None) -> None:
        self.home = Path(home) if home else workbench_home()
        self.path = self.home / ROUTES_FILE
        self.audit_path = self.home / AUDIT_FILE
        # When given, arms other than base must name a registered adapter version.
        self.registry = registry
        self._cache = _Cache()
        self._lock = threading.Lock()

    # ---- reading -----------------------------------------------------------------------
    def _stamp(self) -> tuple[int, int, int] | None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return None
        return st.st_mtime_ns, st.st_size, st.st_ino

    def routes(self) -> dict[str, Route]:
        """Every route, re-read from disk only when the file changed."""
        stamp = self._stamp()
        with self._lock:
            if stamp != self._cache.stamp:
                self._cache = _Cache(stamp, self._read())
            return dict(self._cache.routes)

    def _read(self) -> dict[str, Route]:
        if not self.path.exists():
            return {}
        try:
            data = yaml.safe_load(self.path.read_text(encoding="utf-8")) or {}
            return {str(n): Route.from_yaml(str(n), d or {})
                    for n, d in (data.get("routes") or {}).items()}
        except (yaml.YAMLError, KeyError, TypeError, ValueError, AttributeError,
                WorkbenchError) as exc:
            raise InputError(f"{self.path} is not a valid routes file: {exc}") from exc

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
    def _locked(self) -> Iterator[dict[str, Route]]:
        """Read-modify-write under an exclusive lock, so two writers never lose an update."""
        self.home.mkdir(parents=True, exist_ok=True)
        with open(self.home / (ROUTES_FILE + ".lock"), "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                routes = self._read()
                yield routes
                self._write(routes)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _write(self, routes: dict[str, Route]) -> None:
        data = {"routes": {n: r.to_yaml() for n, r in sorted(routes.items())}}
        fd, tmp = tempfile.mkstemp(dir=self.home, prefix=".routes-", suffix=".yaml")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            yaml.safe_dump(data, fh, sort_keys=False, allow_unicode=True)
        os.replace(tmp, self.path)  # atomic: readers see the old file or the new one

    def _audit(self, route: str, action: str, who: str, before: dict | None, after: dict | None,
               note: str = "") -> None:
        entry = {"time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "ts": time.time(),
                 "route": route, "action": action, "who": who, "before": before, "after": after}
        if note:
            entry["note"] = note
        with open(self.audit_path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(entry, ensure_ascii=False) + "\n")

    def audit(self, route: str | None = None) -> list[dict]:
        """The audit entries (oldest first), for one route or all."""
        if not self.audit_path.exists():
            return []
        rows = [json.loads(line) for line in self.audit_path.read_text(encoding="utf-8").splitlines()
                if line.strip()]
        return [r for r in rows if route is None or r["route"] == route]

    def _check_refs(self, arms: tuple[Arm, ...]) -> None:
        if self.registry is None:
            return
        for arm in arms:
            if arm.ref != BASE_ARM:
                self.registry.resolve(arm.ref)  # UnknownNameError names the known ones

    def create(self, name: str, arms: tuple[Arm, ...], incumbent: str | None = None,
               seed: int = 0, margin: float = DEFAULT_MARGIN, who: str = "") -> Route:
        route = check_route(Route(name, tuple(arms), incumbent or (arms[0].ref if arms else ""),
                                  seed, margin, None, time.time()))
        self._check_refs(route.arms)
        with self._locked() as routes:
            if name in routes:
                raise InputError(f"Route '{name}' exists; change it with `workbench routes set`.")
            routes[name] = route
        self._audit(name, "create", who or token_id(None), None, route.weights)
        return route

    def set(self, name: str, arms: tuple[Arm, ...] | None = None, incumbent: str | None = None,
            margin: float | None = None, seed: int | None = None, who: str = "",
            action: str = "set", previous: str | None = ..., note: str = "") -> Route:  # type: ignore[assignment]
        """Change a route's weights (all arms at once) and/or settings; logged when weights change."""
        with self._locked() as routes:
            if name not in routes:
                raise UnknownNameError("route", name, routes)
            old = routes[name]
            changes: dict = {"updated": time.time()}
            if arms is not None:
                changes["arms"] = tuple(arms)
            for key, value in (("incumbent", incumbent), ("margin", margin), ("seed", seed)):
                if value is not None:
                    changes[key] = value
            if previous is not ...:
                changes["previous"] = previous
            new = check_route(replace(old, **changes))
            self._check_refs(new.arms)
            routes[name] = new
        if new.weights != old.weights or new.seed != old.seed or new.incumbent != old.incumbent:
            self._audit(name, action, who or token_id(None), old.weights, new.weights,
                        note or f"incumbent {new.incumbent}, seed {new.seed}")
        return new

    def delete(self, name: str, who: str = "") -> None:
        with self._locked() as routes:
            if name not in routes:
                raise UnknownNameError("route", name, routes)
            old = routes.pop(name)
        self._audit(name, "delete", who or token_id(None), old.weights, None)

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


_stores: dict[Path, RouteStore] = {}
_stores_lock = threading.Lock()


def default_store() -> RouteStore:
    """One store per WORKBENCH_HOME, so its parsed cache is shared by every caller."""
    home = workbench_home()
    with _stores_lock:
        if home not in _stores:
            _stores[home] = RouteStore(home)
        return _stores[home]


def resolve_route(model_name: str, user_key: str | None) -> str | None:
    """The arm ref (``name@version``, a name, or ``base``) a request for ``model_name`` goes to,
    sticky per ``user_key``; None when ``model_name`` is not a route."""
    return default_store().resolve(model_name, user_key)
