"""The canary simulation: a small seeded run keeps the guard's error rates within alpha."""
from __future__ import annotations

import json
import math
from dataclasses import fields

import pytest

from workbench.devtools import canary_sim as sim
from workbench.errors import InputError

RUNS = 300


@pytest.fixture(scope="module")
def small() -> tuple[sim.SimConfig, list[sim.SimRow]]:
    cfg = sim.SimConfig(runs=RUNS, seed=0, max_feedback=20_000)
    return cfg, sim.simulate(cfg)


def slack(alpha: float, runs: int) -> float:
    """Three binomial standard errors at rate alpha."""
    return 3 * math.sqrt(alpha * (1 - alpha) / runs)


def row(rows: list[sim.SimRow], rule: str, diff: float) -> sim.SimRow:
    return next(r for r in rows if r.rule == rule and r.true_diff == diff)


def test_guard_error_rates_stay_within_alpha(small: tuple[sim.SimConfig, list[sim.SimRow]]) -> None:
    cfg, rows = small
    bound = cfg.policy.alpha + slack(cfg.policy.alpha, RUNS)
    worse, equal, better = (row(rows, sim.GUARD, d) for d in (-0.05, 0.0, 0.05))
    assert worse.wrong_kind == "false promotion" and worse.wrong == worse.advanced <= bound
    assert equal.wrong_kind == "false rollback" and equal.wrong == equal.rolled_back <= bound
    assert better.rolled_back <= bound
    assert all(r.interval_missed <= bound for r in rows if r.rule == sim.GUARD)
    assert better.advanced > 0.9 and worse.rolled_back > 0.1  # it does decide, not just wait
    assert sim.guard_within_alpha(cfg, rows)


def test_the_wilson_interval_misses_far_more_when_peeked_at(
        small: tuple[sim.SimConfig, list[sim.SimRow]]) -> None:
    cfg, rows = small
    fixed = [r for r in rows if r.rule == sim.FIXED]
    assert len(fixed) == 3 and all(r.rolled_back == 0.0 for r in fixed)
    assert all(r.interval_missed > cfg.policy.alpha + slack(cfg.policy.alpha, RUNS) for r in fixed)


def test_rows_carry_the_table_fields(small: tuple[sim.SimConfig, list[sim.SimRow]]) -> None:
    cfg, rows = small
    assert {f.name for f in fields(sim.SimRow)} >= {
        "rule", "true_diff", "runs", "advanced", "rolled_back", "undecided", "wrong",
        "interval_missed", "median_feedback", "p90_feedback"}
    assert {(r.rule, r.true_diff) for r in rows} == {(rule, d) for rule in (sim.GUARD, sim.FIXED)
                                                      for d in cfg.diffs}
    for r in rows:
        assert r.runs == RUNS and r.advanced + r.rolled_back + r.undecided == pytest.approx(1.0)
        if r.undecided < 1.0:
            assert r.median_feedback is not None and r.p90_feedback is not None
            assert 2 * cfg.policy.min_feedback <= r.median_feedback <= r.p90_feedback
            assert r.p90_feedback <= cfg.max_feedback
    text = sim.table(cfg, rows)
    assert all(h in text for h in sim.HEADERS)
    assert "wrong-decision rate ≤ alpha on every row: yes" in text


def test_same_seed_same_rows_and_the_cli(capsys: pytest.CaptureFixture[str]) -> None:
    cfg = sim.SimConfig(runs=40, seed=3, max_feedback=3_000)
    assert sim.simulate(cfg) == sim.simulate(cfg)
    assert sim.main(["--runs", "40", "--seed", "3", "--max-feedback", "3000", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["guard_within_alpha"] is True and len(out["rows"]) == 6
    assert out["config"]["policy"]["steps"] == [10, 50, 100]
    assert sim.main(["--runs", "20", "--max-feedback", "1000", "--diffs=-3,2.5"]) == 0
    assert "−3.0 pts" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["--runs", "0"], "--runs must be at least 1, not 0."),
    (["--max-feedback", "10"], "--max-feedback must be at least twice min_feedback (400), not 10."),
    (["--diffs=0,x"], "--diffs: 'x' is not a number of points"),
    (["--diffs=-70"], "Candidate rates must be in (0, 1)"),
])
def test_bad_options_are_refused(argv: list[str], message: str,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    assert sim.main(argv) == InputError.exit_code
    assert message in capsys.readouterr().err
