"""The canary that acts by itself: after each feedback on a routed answer, the route's guard
policy (``workbench.routing.guard``) is checked and its decision applied.

``rollback``: the candidate goes to weight 0 at once. ``advance``: the candidate moves to the
policy's next step (its weight becomes that percentage), and after the last step it is
promoted (the incumbent stays registered and recorded as ``previous``, for rollback). Each
step needs ``min_feedback`` new feedback on the candidate since the last change, so the
steps are not passed on the same evidence. Every action goes to the route audit with the
numbers.
"""
from __future__ import annotations

import logging

from workbench.routing.guard import ArmOutcomes, GuardDecision, GuardPolicy, evaluate, next_step
from workbench.routing.routes import Arm, Route
from workbench.routing.store import RouteStore
from workbench.store.chatlog import ChatLog

log = logging.getLogger(__name__)
GUARD_WHO = "guard"


def live_candidate(route: Route) -> str | None:
    """The one candidate taking traffic (None: none, or several; the guard then waits)."""
    live = [ref for ref in route.candidates if route.weights[ref] > 0]
    return live[0] if len(live) == 1 else None


def outcomes(counts: dict[str, dict[str, tuple[int, int]]], arm: str, metric: str) -> ArmOutcomes:
    """One arm's answers with feedback on ``metric`` and how many were a success."""
    n, yes = counts.get(arm, {}).get(metric, (0, 0))
    return ArmOutcomes(n, yes, arm)


def decide(route: Route, chatlog: ChatLog, policy: GuardPolicy | None = None) -> GuardDecision | None:
    """The guard's verdict on the route's live candidate (None: no candidate to judge)."""
    policy = policy or GuardPolicy.parse(route.guard)
    candidate = live_candidate(route)
    if candidate is None:
        return None
    counts = chatlog.outcome_counts(route.name)
    return evaluate(policy, outcomes(counts, route.incumbent, policy.metric),
                    outcomes(counts, candidate, policy.metric))


def _fresh(route: Route, chatlog: ChatLog, candidate: str, policy: GuardPolicy) -> int:
    """Candidate feedback since the route last changed (evidence for this step)."""
    return outcomes(chatlog.outcome_counts(route.name, since=route.updated), candidate, policy.metric).n


def check(store: RouteStore, chatlog: ChatLog, name: str) -> GuardDecision | None:
    """Check the route's guard and apply its decision; None when the route has no auto guard."""
    route = store.get(name)
    if not route.guard or not GuardPolicy.parse(route.guard).auto:
        return None
    policy = GuardPolicy.parse(route.guard)
    decision = decide(route, chatlog, policy)
    if decision is None or decision.action == "collect":
        return decision
    candidate = decision.candidate.arm
    if decision.action == "rollback":
        arms = tuple(Arm(a.ref, 0.0 if a.ref == candidate else a.weight) for a in route.arms)
        if not any(a.weight > 0 for a in arms):  # the incumbent had none left: it takes all
            arms = tuple(Arm(a.ref, 100.0 if a.ref == route.incumbent else 0.0) for a in route.arms)
        store.set(name, arms, who=GUARD_WHO, action="guard-rollback", note=decision.message)
        log.warning("route %s: %s", name, decision.message)
        return decision
    if _fresh(route, chatlog, candidate, policy) < policy.min_feedback:
        return decision  # not worse so far; the next step waits for new evidence
    step = next_step(policy, route.share(candidate) * 100.0)
    if step is None or step >= 100:
        store.apply_promotion(name, candidate, GUARD_WHO, decision.message)
    else:
        arms = tuple(Arm(a.ref, float(step) if a.ref == candidate else
                         (100.0 - step if a.ref == route.incumbent else 0.0)) for a in route.arms)
        store.set(name, arms, who=GUARD_WHO, action="guard-advance",
                  note=f"candidate to {step}%: {decision.message}")
    log.info("route %s: %s", name, decision.message)
    return decision


def status(route: Route, chatlog: ChatLog) -> str:
    """One line for the route view and the Monitor: the guard's state and its last action."""
    if not route.guard:
        return "no automatic guard (promote and roll back by hand)"
    policy = GuardPolicy.parse(route.guard)
    decision = decide(route, chatlog, policy)
    head = "guard on" if policy.auto else "guard policy set, acting off"
    return f"{head}: {decision.message}" if decision else f"{head}: no candidate takes traffic"


def overview(store: RouteStore, chatlog: ChatLog) -> list[str]:
    """One line per route with a guard: its state, and its last automatic action with the time."""
    lines = []
    for name, route in sorted(store.routes().items()):
        if not route.guard:
            continue
        line = f"{name}: {status(route, chatlog)}"
        acted = [e for e in store.audit(name) if e["who"] == GUARD_WHO]
        if acted:
            last = acted[-1]
            verb = {"guard-rollback": "rolled back", "guard-advance": "advanced",
                    "promote": "promoted"}.get(last["action"], last["action"])
            line += f" · last action: {verb} at {last['time'][11:16]} UTC: {last.get('note', '')}"
        lines.append(line)
    return lines
