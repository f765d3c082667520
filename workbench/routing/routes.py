"""A/B routes: virtual model names whose traffic is split over weighted arms.

A route such as ``cs-support`` sends 90% of its users to ``cs-support@v2`` (the incumbent)
and 10% to ``cs-support@v3`` (the candidate). Arms are ``name@version`` refs, an adapter
name, or ``base``. Routes live in the shared store (``workbench.store``: a SQLite file, or
PostgreSQL for several replicas); every reader re-reads them at most ``REFRESH_S`` after its
last read, so an edit from the CLI, the admin API, the Adapters tab or another replica
applies to a running server within a second or two, without a restart. A ``routes.yaml``
left by an earlier release is imported once.

Assignment is sticky and documented: a user key ``k`` on route ``r`` with seed ``s`` gets
``u = int(sha256(f"{s}:{r}:{k}")[:8 bytes], big-endian) / 2**64``, a number in [0, 1) that
depends on nothing else; the arms with weight > 0, in stored order, split [0, 1) into
consecutive slices proportional to their weights, and the user gets the arm whose slice holds
``u``. The same user therefore keeps the same arm while the weights stay the same; changing
the seed reshuffles everyone.

Every change of weights is appended to the store's route audit with its time, the route, the
action, the weights before and after, and who made it (an admin token id, never the token).
"""
from __future__ import annotations

import getpass
import hashlib
import secrets
from dataclasses import asdict, dataclass, replace

from workbench.adapters.registry import SAFE_NAME, parse_ref
from workbench.errors import InputError, WorkbenchError
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
    # The automatic canary guard's policy (``workbench.routing.guard``), None: manual only.
    guard: dict | None = None

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
                               data.get("previous"), float(data.get("updated", 0.0)),
                               data.get("guard") or None))


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
