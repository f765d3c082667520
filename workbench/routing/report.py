"""How the arms of a route compare on the chat turns the store holds, and the promote rule.

Per arm: turns, resolution rate (over turns with a "resolved?" answer) with a 95% Wilson
interval, escalation (hand-off to a human agent) rate over turns whose feedback says whether
they were escalated, with its Wilson interval, mean rating (over rated turns) with a 95%
Student-t interval, TTFT and end-to-end P95, and the error rate with its Wilson interval.

The promote rule is the automatic guard's sequential test (``workbench.routing.guard``): a
candidate may be promoted only when the anytime-valid interval for its difference to the
incumbent rules out being worse by more than the margin. With no feedback on either side
there is nothing to compare, and promotion is refused.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats

from workbench.store.chatlog import ChatLog
from workbench.eval.metrics import wilson
from workbench.routing.guard import ArmOutcomes, GuardPolicy, evaluate
from workbench.routing.routes import PromoteRefused, Route
from workbench.routing.store import RouteStore


@dataclass(frozen=True)
class ArmStats:
    """One arm's figures; None where the store has no data for it."""

    # Arm ref.
    arm: str
    # Share of traffic it is configured to get now (0..1).
    share: float
    # Turns answered by it.
    turns: int
    # Turns with a "resolved?" answer, how many said yes, the rate and its 95% Wilson interval.
    resolved_n: int
    resolved_yes: int
    resolution_rate: float | None
    resolution_low: float | None
    resolution_high: float | None
    # Rated turns, the mean rating (1-5) and its 95% t interval.
    rating_n: int
    rating_mean: float | None
    rating_low: float | None
    rating_high: float | None
    # Latency P95 (ms) over turns that have it.
    ttft_p95_ms: float | None
    e2e_p95_ms: float | None
    # Failed answers, and the error rate with its 95% Wilson interval.
    errors: int
    error_rate: float | None
    error_low: float | None
    error_high: float | None
    # Turns whose feedback says whether they were handed to a human, how many were, the
    # rate and its 95% Wilson interval (lower is better).
    escalated_n: int = 0
    escalated_yes: int = 0
    escalation_rate: float | None = None
    escalation_low: float | None = None
    escalation_high: float | None = None


@dataclass(frozen=True)
class RouteReport:
    """A route's configuration and its arms' figures."""

    route: str
    incumbent: str
    margin: float
    weights: dict[str, float]
    arms: dict[str, ArmStats]

    def as_json(self) -> dict:
        out = asdict(self)
        out["arms"] = {k: {f: _round(v) for f, v in asdict(s).items()} for k, s in self.arms.items()}
        return out


@dataclass(frozen=True)
class PromoteDecision:
    allowed: bool
    message: str


def _round(value: object) -> object:
    return round(value, 4) if isinstance(value, float) else value


def mean_interval(values: list[float]) -> tuple[float | None, float | None, float | None]:
    """Mean and its 95% Student-t interval; one value gives no interval."""
    if not values:
        return None, None, None
    arr = np.asarray(values, dtype=float)
    mean = float(arr.mean())
    if len(arr) < 2 or float(arr.std(ddof=1)) == 0.0:
        return mean, (mean if len(arr) > 1 else None), (mean if len(arr) > 1 else None)
    half = float(stats.t.ppf(0.975, len(arr) - 1) * arr.std(ddof=1) / math.sqrt(len(arr)))
    return mean, mean - half, mean + half


def _p95(values: list[float]) -> float | None:
    return float(np.percentile(values, 95)) if values else None


def arm_stats(arm: str, share: float, rows: list[dict]) -> ArmStats:
    resolved = [int(r["resolved"]) for r in rows if r["resolved"] is not None]
    ratings = [float(r["rating"]) for r in rows if r["rating"] is not None]
    errors = sum(1 for r in rows if r["error"])
    escalated = [int(r["escalated"]) for r in rows if r.get("escalated") is not None]
    rlo, rhi = wilson(sum(resolved), len(resolved))
    xlo, xhi = wilson(sum(escalated), len(escalated))
    elo, ehi = wilson(errors, len(rows))
    mean, mlo, mhi = mean_interval(ratings)
    return ArmStats(
        arm, share, len(rows), len(resolved), sum(resolved),
        sum(resolved) / len(resolved) if resolved else None, rlo, rhi,
        len(ratings), mean, mlo, mhi,
        _p95([r["ttft_ms"] for r in rows if r["ttft_ms"] is not None and not r["error"]]),
        _p95([r["total_ms"] for r in rows if r["total_ms"] is not None and not r["error"]]),
        errors, errors / len(rows) if rows else None, elo, ehi,
        len(escalated), sum(escalated), sum(escalated) / len(escalated) if escalated else None,
        xlo, xhi)


def route_report(route: Route, chatlog: ChatLog | None = None,
                 since: float | None = None) -> RouteReport:
    """Compare the route's arms over the turns stored for it (all time, or newer than ``since``)."""
    rows = (chatlog or ChatLog()).route_turns(route.name, since)
    by_arm: dict[str, list[dict]] = {a.ref: [] for a in route.arms}
    for row in rows:
        by_arm.setdefault(row["arm"] or "?", []).append(row)
    arms = {ref: arm_stats(ref, route.share(ref), rs) for ref, rs in by_arm.items()}
    return RouteReport(route.name, route.incumbent, route.margin, route.weights, arms)


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.1%}"


def manual_policy(route: Route) -> GuardPolicy:
    """The test a manual promote applies: the route's guard policy, else the default test at
    the route's margin with no feedback minimum (the interval itself says when it is enough)."""
    if route.guard:
        return GuardPolicy.parse(route.guard)
    return GuardPolicy(margin=min(route.margin, 0.99), min_feedback=1)


def _outcomes(stats: ArmStats | None, arm: str, metric: str) -> ArmOutcomes:
    if stats is None:
        return ArmOutcomes(0, 0, arm)
    if metric == "escalation":
        return ArmOutcomes(stats.escalated_n, stats.escalated_yes, arm)
    return ArmOutcomes(stats.resolved_n, stats.resolved_yes, arm)


def promote_decision(report: RouteReport, candidate: str, incumbent: str,
                     policy: GuardPolicy) -> PromoteDecision:
    """The guard's sequential test, asked by hand: promote when the candidate is not worse than
    the incumbent by more than the margin; the message states the rule and the numbers."""
    rule = (f"promote needs the {1 - policy.alpha:.0%} anytime-valid interval of {candidate} minus "
            f"{incumbent} ({policy.metric}) to rule out being worse by more than the "
            f"{policy.margin * 100:.1f}-point margin")
    inc = _outcomes(report.arms.get(incumbent), incumbent, policy.metric)
    cand = _outcomes(report.arms.get(candidate), candidate, policy.metric)
    what = "'resolved?' answer" if policy.metric == "resolution" else "'escalated' answer"
    for arm in (cand, inc):
        if not arm.n:
            return PromoteDecision(False, f"Promote refused: {rule}; {arm.arm} has no turns with a "
                                          f"{what} yet.")
    decision = evaluate(policy, inc, cand)
    allowed = decision.action == "advance"
    return PromoteDecision(allowed, f"Promote {'allowed' if allowed else 'refused'}: {rule}. "
                                    f"{decision.message}.")


def report_table(report: RouteReport) -> list[list[str]]:
    """Rows for a terminal or a UI table, one per arm."""
    def ci(lo: float | None, hi: float | None, fmt: str) -> str:
        return "" if lo is None else f" [{format(lo, fmt)}, {format(hi, fmt)}]"

    rows = []
    for ref, s in report.arms.items():
        role = "incumbent" if ref == report.incumbent else "candidate"
        rows.append([
            ref, role, f"{s.share:.0%}", str(s.turns),
            (f"{_pct(s.resolution_rate)} ({s.resolved_yes}/{s.resolved_n})"
             + ci(s.resolution_low, s.resolution_high, ".1%")) if s.resolved_n else "–",
            (f"{_pct(s.escalation_rate)} ({s.escalated_yes}/{s.escalated_n})"
             + ci(s.escalation_low, s.escalation_high, ".1%")) if s.escalated_n else "–",
            (f"{s.rating_mean:.2f} (n={s.rating_n})" + ci(s.rating_low, s.rating_high, ".2f"))
            if s.rating_n else "–",
            f"{s.ttft_p95_ms:.0f}" if s.ttft_p95_ms is not None else "–",
            f"{s.e2e_p95_ms:.0f}" if s.e2e_p95_ms is not None else "–",
            f"{_pct(s.error_rate)} ({s.errors})" if s.turns else "–"])
    return rows


REPORT_HEADERS = ("arm", "role", "share", "turns", "resolution [95% CI]", "escalation [95% CI]",
                  "rating [95% CI]", "TTFT P95 ms", "e2e P95 ms", "errors")


def promote(store: RouteStore, name: str, candidate: str | None = None, who: str = "",
            report: RouteReport | None = None) -> Route:
    """Move ``candidate`` to 100% if the guarded-rollout rule allows it, else PromoteRefused."""
    route = store.get(name)
    candidate = store.pick_candidate(name, candidate)
    rep = report if report is not None else route_report(route)
    decision = promote_decision(rep, candidate, route.incumbent, manual_policy(route))
    if not decision.allowed:
        raise PromoteRefused(decision.message)
    return store.apply_promotion(name, candidate, who, decision.message)
