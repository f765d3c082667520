"""The canary guard: the policy and its refusals, decisions, direction, coverage, the Wilson rule."""
from __future__ import annotations

import ast
import math
from pathlib import Path

import numpy as np
import pytest

from workbench.errors import InputError
from workbench.eval.metrics import wilson
from workbench.routing import guard as guard_module
from workbench.routing.guard import (ArmOutcomes, GuardPolicy, confidence_sequence, evaluate,
                                     fixed_sample_decision, mixture_rho2, next_step,
                                     wilson_arrays)

INC, CAND = "cs-support@v2", "cs-support@v3"
POLICY = GuardPolicy(auto=True)


def arms(inc: tuple[int, int], cand: tuple[int, int]) -> tuple[ArmOutcomes, ArmOutcomes]:
    return ArmOutcomes(*inc, INC), ArmOutcomes(*cand, CAND)


def boundary(info: float, rho2: float, alpha: float) -> float:
    """The half-width as the module doc writes it."""
    x = info * rho2
    return math.sqrt(2 * (x + 1) / (info**2 * rho2) * math.log(math.sqrt(x + 1) / alpha))


# ---- the policy ------------------------------------------------------------------------------
def test_defaults_parse_and_round_trip() -> None:
    default = GuardPolicy()
    assert (default.auto, default.metric, default.margin, default.alpha, default.min_feedback,
            default.steps) == (False, "resolution", 0.02, 0.05, 200, (10, 50, 100))
    assert GuardPolicy.parse(None) == GuardPolicy.parse({}) == default
    data = {"auto": True, "metric": "escalation", "margin": 0.03, "alpha": 0.1,
            "min_feedback": 50, "steps": [5, 25, 100]}
    policy = GuardPolicy.parse(data)
    assert policy.steps == (5, 25, 100) and policy.as_dict() == data
    assert GuardPolicy.parse(policy.as_dict()) == policy
    assert GuardPolicy.parse({"margin": 0, "steps": [100]}).margin == 0.0


@pytest.mark.parametrize("data, message", [
    ([1, 2], r"must be a mapping .* not list"),
    ({"margn": 0.02}, r"Unknown guard policy field 'margn'\. Did you mean 'margin'\?"),
    ({"step": [10, 100]}, r"Did you mean 'steps'\?"),
    ({"auto": "yes"}, r"auto must be true or false, not 'yes'"),
    ({"metric": "escalations"}, r"Unknown guard metric 'escalations'\. Did you mean 'escalation'"),
    ({"metric": "csat"}, r"Unknown guard metric 'csat'\. Known: escalation, resolution"),
    ({"margin": 2}, r"margin is a proportion in \[0, 1\), e\.g\. 0\.02 for 2 points; got 2"),
    ({"margin": -0.01}, r"margin is a proportion in \[0, 1\)"),
    ({"margin": 1.0}, r"margin is a proportion in \[0, 1\)"),
    ({"margin": "0.02"}, r"margin must be a number, not '0\.02'"),
    ({"margin": True}, r"margin must be a number, not True"),
    ({"margin": float("nan")}, r"margin must be a number, not nan"),
    ({"alpha": 0}, r"alpha must be in \(0, 0\.5\), e\.g\. 0\.05; got 0"),
    ({"alpha": 0.5}, r"alpha must be in \(0, 0\.5\)"),
    ({"alpha": None}, r"alpha must be a number, not None"),
    ({"min_feedback": 0}, r"min_feedback must be at least 1; got 0"),
    ({"min_feedback": 200.0}, r"min_feedback must be a whole number, not 200\.0"),
    ({"min_feedback": True}, r"min_feedback must be a whole number, not True"),
    ({"steps": []}, r"steps must be a non-empty list of percentages ending at 100"),
    ({"steps": "10,50,100"}, r"steps must be a non-empty list"),
    ({"steps": [10, 10, 100]}, r"steps must increase strictly; got \[10, 10, 100\]"),
    ({"steps": [50, 10, 100]}, r"steps must increase strictly"),
    ({"steps": [10, 50]}, r"the last step must be 100 \(promotion\); got \[10, 50\]"),
    ({"steps": [0, 100]}, r"steps are percentages in \(0, 100\]; got \[0, 100\]"),
    ({"steps": [10, 150]}, r"steps are percentages in \(0, 100\]"),
    ({"steps": [10.5, 100]}, r"each step must be a whole number, not 10\.5"),
])
def test_every_bad_policy_is_refused_by_name(data: object, message: str) -> None:
    with pytest.raises(InputError, match=message):
        GuardPolicy.parse(data)  # type: ignore[arg-type]


def test_bad_field_is_named_as_the_param() -> None:
    with pytest.raises(InputError) as info:
        GuardPolicy.parse({"alpha": 0.9})
    assert info.value.param == "alpha"


@pytest.mark.parametrize("n, k, message", [
    (10, 11, r"need 0 ≤ successes ≤ n; got 11 successes of 10"),
    (-1, 0, r"need 0 ≤ successes ≤ n"),
    (10, -1, r"need 0 ≤ successes ≤ n"),
    (2.5, 1, r"n and successes must be whole numbers"),
])
def test_bad_arm_outcomes_are_refused(n: object, k: object, message: str) -> None:
    with pytest.raises(InputError, match=message):
        ArmOutcomes(n, k, CAND)  # type: ignore[arg-type]


def test_next_step_walks_the_policy_steps() -> None:
    assert [next_step(POLICY, w) for w in (0, 10, 25, 50, 100)] == [10, 50, 50, 100, None]
    assert next_step(POLICY, 50 - 1e-9) == 100  # a share read back a hair under step 50


# ---- decisions -------------------------------------------------------------------------------
def test_clear_drop_is_rolled_back_with_the_numbers() -> None:
    d = evaluate(POLICY, *arms((4500, 2700), (500, 205)))
    assert d.action == "rollback" and d.high < -POLICY.margin
    assert d.message.startswith(f"{CAND} is worse than {INC} by more than the 2.0-point margin: "
                                "resolution 41.0% (205/500) vs 60.0% (2700/4500) "
                                "(difference −19.0 points, 95% anytime-valid interval [−")
    assert d.as_dict()["candidate_rate"] == 0.41 and d.method == guard_module.ANYTIME


def test_clear_gain_advances_and_an_even_one_keeps_collecting() -> None:
    up = evaluate(POLICY, *arms((18000, 10800), (2000, 1300)))
    assert up.action == "advance" and up.low > -POLICY.margin
    assert "is not worse than" in up.message and up.message.endswith("move it to the next step")
    even = evaluate(POLICY, *arms((1800, 1080), (200, 120)))
    assert even.action == "collect" and even.low < -POLICY.margin < 0 < even.high
    assert "collecting more feedback" in even.message


def test_min_feedback_holds_back_advance_but_not_an_early_rollback() -> None:
    gain = evaluate(POLICY, *arms((18000, 10800), (150, 140)))
    assert gain.low > -POLICY.margin and gain.action == "collect"
    assert gain.message.startswith(f"collecting 150/200 feedback on {CAND}: resolution")
    both = evaluate(POLICY, *arms((20, 12), (3, 2)))
    assert both.message.startswith(f"collecting 3/200 feedback on {CAND} and 20/200 on {INC}")
    harm = evaluate(POLICY, *arms((1500, 900), (150, 15)))
    assert harm.action == "rollback" and "is worse than" in harm.message
    empty = evaluate(POLICY, *arms((0, 0), (0, 0)))
    assert empty.action == "collect" and empty.low is None
    assert empty.message == f"collecting 0/200 feedback on {CAND} and 0/200 on {INC}"


def test_all_yes_arms_do_not_give_a_zero_width_interval() -> None:
    d = evaluate(POLICY, *arms((5, 5), (5, 0)))
    assert d.action == "collect" and d.low == -1.0 and d.high > 0


def test_escalation_is_judged_lower_is_better() -> None:
    esc = GuardPolicy(metric="escalation")
    more = evaluate(esc, *arms((20000, 2000), (2000, 300)))  # 15% vs 10% escalated
    assert more.action == "rollback" and more.difference == pytest.approx(0.05)
    assert more.message.startswith(f"{CAND} is worse than {INC}")
    assert "escalation 15.0% (300/2000) vs 10.0% (2000/20000)" in more.message
    fewer = evaluate(esc, *arms((20000, 2000), (2000, 100)))  # 5% vs 10%
    assert fewer.action == "advance"
    # The same counts read as resolution flip both ways.
    assert evaluate(POLICY, *arms((20000, 2000), (2000, 300))).action == "advance"
    assert evaluate(POLICY, *arms((20000, 2000), (2000, 100))).action == "rollback"


# ---- the interval ----------------------------------------------------------------------------
def test_interval_is_the_documented_boundary_on_the_shrunk_variance() -> None:
    rho2 = mixture_rho2(0.05, 0.02)
    diff, low, high = confidence_sequence(1800, 1083, 200, 82, 0.05, rho2)
    q0, q1 = 1084 / 1802, 83 / 202
    half = boundary(1 / (q0 * (1 - q0) / 1800 + q1 * (1 - q1) / 200), rho2, 0.05)
    assert diff == pytest.approx(82 / 200 - 1083 / 1800)
    assert (low, high) == pytest.approx((diff - half, diff + half))


def test_rho_plans_the_tightest_boundary_where_it_meets_the_margin() -> None:
    for alpha, margin in ((0.05, 0.02), (0.01, 0.05), (0.1, 0.0)):
        rho2 = mixture_rho2(alpha, margin)
        x = -2 * math.log(alpha) + math.log(1 - 2 * math.log(alpha))
        info = x / rho2
        assert boundary(info, rho2, alpha) == pytest.approx(max(margin, guard_module.PLAN_FLOOR))
        # Near the width-minimising ρ for that information: moving it widens the boundary.
        assert boundary(info, rho2 * 2, alpha) > boundary(info, rho2, alpha)
        assert boundary(info, rho2 / 2, alpha) > boundary(info, rho2, alpha)


def test_interval_covers_the_true_difference_at_every_look() -> None:
    """200 seeded canaries of 4,000 feedback, 30% on the candidate, checked after each one."""
    rng = np.random.default_rng(7)
    p0, p1, alpha = 0.60, 0.52, 0.05
    cand = rng.random((200, 4000)) < 0.3
    yes = rng.random((200, 4000)) < np.where(cand, p1, p0)
    n1, s1 = cand.cumsum(1), (cand & yes).cumsum(1)
    n0, s0 = (~cand).cumsum(1), (~cand & yes).cumsum(1)
    _, low, high = confidence_sequence(n0, s0, n1, s1, alpha, mixture_rho2(alpha, 0.02))
    missed = ((low > p1 - p0) | (high < p1 - p0)).any(axis=1).mean()
    assert missed <= alpha + 3 * math.sqrt(alpha * (1 - alpha) / 200)
    at_end = (low[:, -1] <= p1 - p0) & (p1 - p0 <= high[:, -1])
    assert at_end.mean() >= 0.95


def test_float32_counts_stay_float32_and_agree() -> None:
    counts = [np.array([1800.0, 5000.0]), np.array([1083.0, 3001.0]),
              np.array([200.0, 600.0]), np.array([82.0, 350.0])]
    wide = confidence_sequence(*counts, 0.05, mixture_rho2(0.05, 0.02))
    narrow = confidence_sequence(*(c.astype(np.float32) for c in counts), 0.05,
                                 mixture_rho2(0.05, 0.02))
    assert all(a.dtype == np.float32 for a in narrow)
    np.testing.assert_allclose(narrow, wide, atol=1e-5)


def test_vectorised_wilson_is_metrics_wilson() -> None:
    for n in (1, 7, 200, 1999):
        for k in sorted({0, 1, n // 3, n - 1, n}):
            low, high = wilson_arrays(k, n)
            assert (float(low), float(high)) == pytest.approx(wilson(k, n), abs=1e-12)


# ---- the fixed-sample rule ------------------------------------------------------------------
@pytest.mark.parametrize("inc, cand", [((900, 540), (100, 60)), ((900, 540), (300, 175)),
                                       ((2000, 1200), (1000, 590)), ((900, 540), (100, 30)),
                                       ((3000, 1800), (2500, 1470))])
def test_fixed_sample_decision_is_the_wilson_promote_rule(inc: tuple[int, int],
                                                          cand: tuple[int, int]) -> None:
    policy = GuardPolicy(min_feedback=1)
    ours = fixed_sample_decision(policy, *arms(inc, cand))
    lower, _ = wilson(cand[1], cand[0])
    assert (ours.action == "advance") == (lower >= inc[1] / inc[0] - policy.margin - 1e-12)
    assert ours.method == guard_module.FIXED and ours.action != "rollback"
    assert ours.low == pytest.approx(lower - inc[1] / inc[0])


def test_fixed_sample_decision_mirrors_for_escalation() -> None:
    esc = GuardPolicy(metric="escalation", min_feedback=1)
    _, upper = wilson(90, 1000)
    assert upper <= 0.10 + esc.margin  # 9% escalated, upper bound within 10% + 2 points
    assert fixed_sample_decision(esc, *arms((9000, 900), (1000, 90))).action == "advance"
    assert fixed_sample_decision(esc, *arms((9000, 900), (1000, 150))).action == "collect"


def test_fixed_sample_decision_waits_for_min_feedback_too() -> None:
    d = fixed_sample_decision(POLICY, *arms((900, 540), (150, 140)))
    assert d.action == "collect" and d.message.startswith(f"collecting 150/200 feedback on {CAND}")


def test_guard_module_is_pure() -> None:
    tree = ast.parse(Path(guard_module.__file__).read_text(encoding="utf-8"))
    names = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    names |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    outer = tuple(f"workbench.{p}" for p in ("ui", "cli", "api", "service", "store"))
    assert not [m for m in names if m.startswith(outer)]
    assert not {"os", "pathlib", "sqlite3", "yaml"} & names
