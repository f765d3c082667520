"""The automatic canary guard: a sequential non-inferiority test to run after every feedback.

A route may carry a guard policy such as ``{"auto": true, "metric": "resolution", "margin": 0.02,
"alpha": 0.05, "min_feedback": 200, "steps": [10, 50, 100]}``. :func:`evaluate` compares the
candidate arm's binary outcome (resolved, or escalated) with the incumbent's and says
"rollback" (worse than the incumbent by more than the margin), "advance" (not worse by more
than the margin: the caller moves the candidate to the next step, and promotes it after the
last) or "collect" (not decided yet). It is pure: the caller supplies the counts and acts.

Method: an anytime-valid asymptotic confidence sequence for the difference of the two
proportions (Waudby-Smith, Arbour, Sinha, Kennedy, Ramdas, "Time-uniform central limit theory
and asymptotic confidence sequences", Annals of Statistics, 2024; arXiv:2103.06476, 2021).
With ``V`` the estimate's variance, ``p1(1-p1)/n1 + p0(1-p0)/n0``, and ``I = 1/V`` the
information, the interval is the estimate ± ``sqrt(2(Iρ²+1)/(I²ρ²) · log(sqrt(Iρ²+1)/α))``:
Robbins' normal-mixture boundary, which the paper's asymptotic confidence sequences use, on
the difference measured in information time. It holds at every look at once with probability
at least 1 − α (asymptotically), so checking after every feedback is allowed; a fixed-sample
95% interval checked that way misses far more often. Information time is used because the
difference estimate has the covariance of a Brownian motion in ``I`` whatever share of the
traffic each arm gets (the independent-increments structure of group-sequential trials), so
one boundary serves every split a rollout passes through. Strictly that holds for splits set
in advance; a split that changes because of an earlier "advance" is a mild departure, and the
simulation (``workbench.devtools.canary_sim``) checks the first step only.

The tuning ρ fixes where the boundary is tightest. The paper's width-minimising choice for a
planned sample ``I*`` is ``ρ² = (−2 log α + log(1 − 2 log α)) / I*``; the plan here is the
information at which that tightest boundary's half-width equals the margin, since that is
where an equal candidate gets decided (a margin under one point plans for one point, because
a zero margin has no such point). For α = 0.05 and a 2-point margin ``I*`` ≈ 23,000, about
61,000 feedback in all at a 10/90 split of 60% resolution. Planning instead for the
information at ``min_feedback`` (200 on the candidate at 10/90) rolled a 20-point drop back
about three times sooner, but in the simulation (500 runs a difference) its interval missed
the truth in 6–8% of runs, above α: with a few hundred feedback on the candidate the normal
approximation the paper's guarantee rests on is not good yet. With the plan above a 20-point
drop is still rolled back after a median of about 2,200 feedback in all.

The variance uses each arm's rate shrunk by one success and one failure, so an arm whose
answers were all "yes" (or all "no") does not give a zero-width interval after a few feedback.

Before both arms have ``min_feedback`` feedback the answer is "collect", with one exception:
when the interval already lies entirely on the worse side of the margin the answer is
"rollback" at once. Stopping a harmful candidate early is the guard's purpose, and the
interval being valid at every look is what makes stopping early safe; the wait only holds
back promotions. A candidate is only ever judged on the counts given: the interval covers
every look, so feeding it the cumulative counts through every step keeps one error bound
for the whole rollout.

:func:`fixed_sample_decision` is the fixed-sample Wilson promote rule that manual promotes
applied before this guard (lower 95% Wilson bound of the candidate's rate ≥ the incumbent's
rate − margin), on the same inputs, for comparison; it never rolls back.
"""
from __future__ import annotations

import itertools
import json
import math
import operator
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.stats import norm

from workbench.errors import InputError, unknown_name_message
from workbench.eval.metrics import wilson

METRICS = ("resolution", "escalation")
# Metrics where a higher candidate rate is worse.
LOWER_IS_BETTER = frozenset({"escalation"})
ACTIONS = ("collect", "rollback", "advance")
# The margin the tuning plans for when the policy's margin is smaller (see module doc).
PLAN_FLOOR = 0.01
ANYTIME = "anytime-valid confidence sequence"
FIXED = "fixed-sample Wilson rule"


def _number(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InputError(f"Guard policy: {name} must be a number, not {value!r}.", param=name)
    return float(value)


def _whole(name: str, value: object, param: str | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InputError(f"Guard policy: {name} must be a whole number, not {value!r}.",
                         param=param or name)
    return value


def _check_steps(value: object) -> tuple[int, ...]:
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)) or not value:
        raise InputError("Guard policy: steps must be a non-empty list of percentages ending at "
                         f"100, e.g. [10, 50, 100], not {value!r}.", param="steps")
    steps = tuple(_whole("each step", s, "steps") for s in value)
    if any(not 0 < s <= 100 for s in steps):
        raise InputError(f"Guard policy: steps are percentages in (0, 100]; got {list(steps)}.",
                         param="steps")
    if any(b <= a for a, b in itertools.pairwise(steps)):
        raise InputError(f"Guard policy: steps must increase strictly; got {list(steps)}.",
                         param="steps")
    if steps[-1] != 100:
        raise InputError(f"Guard policy: the last step must be 100 (promotion); got {list(steps)}.",
                         param="steps")
    return steps


@dataclass(frozen=True)
class GuardPolicy:
    """A route's automatic-guard settings; every field is checked on construction."""

    # Act on the decisions without a person (the route's caller reads this; evaluate ignores it).
    auto: bool = False
    # "resolution" (higher is better) or "escalation" (handed to a human agent; lower is better).
    metric: str = "resolution"
    # How far (a proportion: 0.02 = 2 points) the candidate may trail before it counts as worse.
    margin: float = 0.02
    # Chance, over the whole monitoring, that the interval ever misses the true difference.
    alpha: float = 0.05
    # Feedback per arm before the guard may advance a candidate.
    min_feedback: int = 200
    # The candidate's weights (percent) after each advance; the last, 100, is promotion.
    steps: tuple[int, ...] = (10, 50, 100)

    def __post_init__(self) -> None:
        if not isinstance(self.auto, bool):
            raise InputError(f"Guard policy: auto must be true or false, not {self.auto!r}.",
                             param="auto")
        if self.metric not in METRICS:
            raise InputError(unknown_name_message("guard metric", str(self.metric),
                                                  sorted(METRICS)), param="metric")
        margin, alpha = _number("margin", self.margin), _number("alpha", self.alpha)
        if not 0.0 <= margin < 1.0:
            raise InputError("Guard policy: margin is a proportion in [0, 1), e.g. 0.02 for 2 "
                             f"points; got {self.margin!r}.", param="margin")
        if not 0.0 < alpha < 0.5:
            raise InputError("Guard policy: alpha must be in (0, 0.5), e.g. 0.05; got "
                             f"{self.alpha!r}.", param="alpha")
        if _whole("min_feedback", self.min_feedback) < 1:
            raise InputError("Guard policy: min_feedback must be at least 1; got "
                             f"{self.min_feedback}.", param="min_feedback")
        object.__setattr__(self, "margin", margin)
        object.__setattr__(self, "alpha", alpha)
        object.__setattr__(self, "steps", _check_steps(self.steps))

    @classmethod
    def parse(cls, data: Mapping[str, object] | None) -> GuardPolicy:
        """A policy from a route's YAML or a JSON body; None or {} gives the defaults."""
        if data is None:
            return cls()
        if not isinstance(data, Mapping):
            raise InputError("Guard policy must be a mapping such as {\"auto\": true, "
                             f"\"margin\": 0.02}}, not {type(data).__name__}.", param="guard")
        known = sorted(f.name for f in fields(cls))
        for key in data:
            if key not in known:
                raise InputError(unknown_name_message("guard policy field", str(key), known),
                                 param=str(key))
        return cls(**{str(k): v for k, v in data.items()})

    def as_dict(self) -> dict[str, object]:
        """Plain types (steps as a list), so ``GuardPolicy.parse(p.as_dict()) == p``."""
        out = asdict(self)
        out["steps"] = list(self.steps)
        return out


@dataclass(frozen=True)
class ArmOutcomes:
    """One arm's feedback on the policy's metric: how many answers, and how many were a success
    (for "escalation", a success is an escalation)."""

    n: int
    successes: int
    # Arm ref for messages, e.g. cs-support@v3; empty gives "the candidate" / "the incumbent".
    arm: str = ""

    def __post_init__(self) -> None:
        try:
            n, k = operator.index(self.n), operator.index(self.successes)
        except TypeError:
            raise InputError(f"Arm outcomes{self._label()}: n and successes must be whole numbers, "
                             f"not {self.n!r} and {self.successes!r}.") from None
        if n < 0 or not 0 <= k <= n:
            raise InputError(f"Arm outcomes{self._label()}: need 0 ≤ successes ≤ n; got "
                             f"{k} successes of {n}.")
        object.__setattr__(self, "n", int(n))
        object.__setattr__(self, "successes", int(k))

    def _label(self) -> str:
        return f" of {self.arm}" if self.arm else ""

    @property
    def rate(self) -> float | None:
        return self.successes / self.n if self.n else None


@dataclass(frozen=True)
class GuardDecision:
    """What the guard (or the fixed-sample rule) says, with the numbers behind it."""

    # "collect", "rollback" or "advance".
    action: str
    # One line for people and the audit log.
    message: str
    metric: str
    incumbent: ArmOutcomes
    candidate: ArmOutcomes
    # Candidate rate − incumbent rate, and the interval for it (proportions); None without data.
    difference: float | None
    low: float | None
    high: float | None
    margin: float
    alpha: float
    # ANYTIME or FIXED.
    method: str

    def as_dict(self) -> dict[str, object]:
        out = asdict(self)
        out["incumbent_rate"], out["candidate_rate"] = self.incumbent.rate, self.candidate.rate
        return out


# ---- the interval, on scalars or arrays (the simulation runs the same code) -----------------
def _floats(values: ArrayLike) -> NDArray:
    """float64, except that float32 arrays stay float32: the simulation's counts are exact in it
    and its passes over them run several times faster."""
    if isinstance(values, np.ndarray) and values.dtype == np.float32:
        return values
    return np.asarray(values, dtype=float)


def mixture_rho2(alpha: float, margin: float) -> float:
    """ρ² of the normal mixture, planned for the information where the half-width is the
    margin (see the module doc)."""
    x = -2.0 * math.log(alpha) + math.log(1.0 - 2.0 * math.log(alpha))
    width_at_plan = math.sqrt(2.0 * (x + 1.0) / x * math.log(math.sqrt(x + 1.0) / alpha))
    planned_information = (width_at_plan / max(margin, PLAN_FLOOR)) ** 2
    return x / planned_information


def confidence_sequence(n_inc: ArrayLike, s_inc: ArrayLike, n_cand: ArrayLike, s_cand: ArrayLike,
                        alpha: float, rho2: float) -> tuple[NDArray, NDArray, NDArray]:
    """(difference, low, high) of candidate − incumbent rate; NaN where an arm has no feedback."""
    n0, s0, n1, s1 = (_floats(a) for a in (n_inc, s_inc, n_cand, s_cand))
    with np.errstate(divide="ignore", invalid="ignore"):
        diff = s1 / n1 - s0 / n0
        q0, q1 = (s0 + 1.0) / (n0 + 2.0), (s1 + 1.0) / (n1 + 2.0)
        var = q0 * (1.0 - q0) / n0 + q1 * (1.0 - q1) / n1
        # The module doc's boundary with I = 1/var, rearranged to spare the simulation a few
        # passes over its arrays: 2(Iρ²+1)/(I²ρ²) = 2·var(var+ρ²)/ρ², and
        # 2·log(√(Iρ²+1)/α) = log1p(ρ²/var) − 2 log α.
        half = np.sqrt(var * (var + rho2) / rho2 * (np.log1p(rho2 / var) - 2.0 * math.log(alpha)))
    # A difference of proportions lies in [-1, 1]; clipping to it keeps the coverage.
    return diff, np.maximum(diff - half, -1.0), np.minimum(diff + half, 1.0)


def wilson_arrays(successes: ArrayLike, n: ArrayLike) -> tuple[NDArray, NDArray]:
    """The 95% Wilson interval in closed form, vectorised; equal to ``metrics.wilson``."""
    k, m = _floats(successes), _floats(n)
    z = float(norm.ppf(0.975))
    with np.errstate(divide="ignore", invalid="ignore"):
        centre = (k + z * z / 2.0) / (m + z * z)
        half = z / (m + z * z) * np.sqrt(k * (m - k) / m + z * z / 4.0)
    return centre - half, centre + half


def _better_side(metric: str, low: ArrayLike, high: ArrayLike) -> tuple[NDArray, NDArray]:
    """The interval of how much better the candidate is (positive = better), whatever the metric."""
    lo, hi = _floats(low), _floats(high)
    return (-hi, -lo) if metric in LOWER_IS_BETTER else (lo, hi)


def _enough(policy: GuardPolicy, n_inc: ArrayLike, n_cand: ArrayLike) -> NDArray:
    return (np.asarray(n_inc) >= policy.min_feedback) & (np.asarray(n_cand) >= policy.min_feedback)


def guard_actions(policy: GuardPolicy, n_inc: ArrayLike, n_cand: ArrayLike, low: ArrayLike,
                  high: ArrayLike) -> tuple[NDArray, NDArray]:
    """(rollback, advance) masks from the anytime-valid interval; rollback needs no minimum."""
    gain_lo, gain_hi = _better_side(policy.metric, low, high)
    enough = _enough(policy, n_inc, n_cand)
    rollback = gain_hi < -policy.margin  # NaN compares False: no interval, no decision
    return rollback, enough & ~rollback & (gain_lo > -policy.margin)


def fixed_actions(policy: GuardPolicy, n_inc: ArrayLike, n_cand: ArrayLike, low: ArrayLike,
                  high: ArrayLike) -> NDArray:
    """The advance mask of the fixed-sample Wilson rule, given the candidate's Wilson bounds minus
    the incumbent's rate; the 1e-12 keeps the rule's old tolerance for float rounding."""
    gain_lo, _ = _better_side(policy.metric, low, high)
    return _enough(policy, n_inc, n_cand) & (gain_lo >= -policy.margin - 1e-12)


# ---- decisions -------------------------------------------------------------------------------
def _points(x: float) -> str:
    return f"{x * 100:+.1f}".replace("-", "−")


def _name(arm: ArmOutcomes, role: str) -> str:
    return arm.arm or f"the {role}"


def _waiting(policy: GuardPolicy, inc: ArmOutcomes, cand: ArmOutcomes) -> str | None:
    short = [(a, r) for a, r in ((cand, "candidate"), (inc, "incumbent"))
             if a.n < policy.min_feedback]
    if not short:
        return None
    parts = [f"{a.n}/{policy.min_feedback} feedback on {_name(a, r)}" if i == 0
             else f"{a.n}/{policy.min_feedback} on {_name(a, r)}" for i, (a, r) in enumerate(short)]
    return "collecting " + " and ".join(parts)


def _numbers(policy: GuardPolicy, inc: ArmOutcomes, cand: ArmOutcomes, diff: float, low: float,
             high: float, label: str) -> str:
    level = f"{(1 - policy.alpha) * 100:g}%"
    return (f"{policy.metric} {cand.rate:.1%} ({cand.successes}/{cand.n}) vs {inc.rate:.1%} "
            f"({inc.successes}/{inc.n}) (difference {_points(diff)} points, {level} {label} "
            f"[{_points(low)}, {_points(high)}])")


def _decision(policy: GuardPolicy, inc: ArmOutcomes, cand: ArmOutcomes, action: str,
              interval: tuple[float, float, float] | None, method: str) -> GuardDecision:
    c, i = _name(cand, "candidate"), _name(inc, "incumbent")
    margin = f"the {policy.margin * 100:.1f}-point margin"
    if interval is None or any(math.isnan(v) for v in interval):
        message = _waiting(policy, inc, cand) or f"collecting feedback on {c}"
        return GuardDecision(action, message, policy.metric, inc, cand, None, None, None,
                             policy.margin, policy.alpha, method)
    label = "anytime-valid interval" if method == ANYTIME else "Wilson bound minus incumbent rate"
    numbers = _numbers(policy, inc, cand, *interval, label)
    if action == "rollback":
        message = f"{c} is worse than {i} by more than {margin}: {numbers}; roll it back"
    elif action == "advance":
        message = (f"{c} is not worse than {i} by more than {margin}: {numbers}; "
                   "move it to the next step")
    else:
        waiting = _waiting(policy, inc, cand)
        message = (f"{waiting}: {numbers}" if waiting else
                   f"{c} vs {i} is not decided against {margin} yet: {numbers}; "
                   "collecting more feedback")
    return GuardDecision(action, message, policy.metric, inc, cand, *(float(v) for v in interval),
                         policy.margin, policy.alpha, method)


def evaluate(policy: GuardPolicy, incumbent: ArmOutcomes, candidate: ArmOutcomes) -> GuardDecision:
    """The guard's decision on the counts so far; valid to call after every feedback."""
    if not incumbent.n or not candidate.n:
        return _decision(policy, incumbent, candidate, "collect", None, ANYTIME)
    diff, low, high = confidence_sequence(incumbent.n, incumbent.successes, candidate.n,
                                          candidate.successes, policy.alpha,
                                          mixture_rho2(policy.alpha, policy.margin))
    rollback, advance = guard_actions(policy, incumbent.n, candidate.n, low, high)
    action = "rollback" if rollback else "advance" if advance else "collect"
    return _decision(policy, incumbent, candidate, action, (float(diff), float(low), float(high)),
                     ANYTIME)


def fixed_sample_decision(policy: GuardPolicy, incumbent: ArmOutcomes,
                          candidate: ArmOutcomes) -> GuardDecision:
    """The fixed-sample Wilson rule on the same inputs, with the same min_feedback wait:
    "advance" when the candidate's 95% Wilson bound on its worse side reaches the incumbent's
    rate less the margin (the lower bound for resolution, the upper for escalation), else
    "collect". Its 95% holds for one look only."""
    if not incumbent.n or not candidate.n:
        return _decision(policy, incumbent, candidate, "collect", None, FIXED)
    w_low, w_high = wilson(candidate.successes, candidate.n)
    assert w_low is not None and w_high is not None  # candidate.n > 0
    base = incumbent.successes / incumbent.n
    low, high = w_low - base, w_high - base
    advance = bool(fixed_actions(policy, incumbent.n, candidate.n, low, high))
    return _decision(policy, incumbent, candidate, "advance" if advance else "collect",
                     (candidate.successes / candidate.n - base, low, high), FIXED)


def next_step(policy: GuardPolicy, weight: float) -> int | None:
    """The candidate's weight (percent) after an advance at ``weight``; None once it is at 100."""
    # A weight read back as share × 100 may come out a hair under its step (e.g. 49.99999999);
    # without the tolerance the candidate would "advance" to the step it is already on.
    return next((s for s in policy.steps if s > weight + 1e-6), None)


GUARD_EXAMPLE = ('{"auto": true, "metric": "resolution", "margin": 0.02, "min_feedback": 200, '
                 '"steps": [10, 50, 100]}')


def policy_from_json(text: str) -> dict[str, object]:
    """A guard policy typed as JSON (the CLI's ``--guard``, the Adapters tab), checked;
    ``{}`` is no guard."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"The guard policy is not JSON ({exc.msg}); e.g. {GUARD_EXAMPLE}") from None
    if not isinstance(value, dict):
        raise InputError(f"The guard policy is a JSON object, e.g. {GUARD_EXAMPLE}")
    return GuardPolicy.parse(value).as_dict() if value else {}
