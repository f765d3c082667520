"""Blind arena: vote storage, Bradley–Terry ratings with bootstrap intervals, the CLI."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from workbench.errors import InputError
from workbench.eval.arena import (ELO_SCALE, ArenaStore, Vote, fit_bradley_terry, leaderboard,
                                  ratings)


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ArenaStore:
    monkeypatch.setenv("WORKBENCH_HOME", str(tmp_path / "home"))
    return ArenaStore()


def _votes(rows: list[tuple[str, str, str]], lang: str = "en") -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["variant_a", "variant_b", "vote"]).assign(lang=lang)


def test_two_variants_match_the_closed_form() -> None:
    """Two players: the MLE is log((wins + ties/2) / (losses + ties/2)); both bad is a tie."""
    votes = _votes([("x", "y", "a")] * 30 + [("y", "x", "a")] * 10 + [("x", "y", "tie")] * 6
                   + [("y", "x", "both_bad")] * 4)
    theta = fit_bradley_terry(votes["variant_a"].map({"x": 0, "y": 1}).to_numpy(),
                              votes["variant_b"].map({"x": 0, "y": 1}).to_numpy(),
                              votes["vote"].map({"a": 1.0, "b": 0.0, "tie": .5, "both_bad": .5}).to_numpy(),
                              2, prior=0.0)
    assert theta[0] - theta[1] == pytest.approx(np.log(35 / 15), abs=1e-8)
    assert theta.sum() == pytest.approx(0, abs=1e-12)
    x, y = ratings(votes, prior=0.0, b=200)
    assert (x.variant, y.variant) == ("x", "y")
    assert x.rating - y.rating == pytest.approx(400 * np.log10(35 / 15), abs=1e-6)
    assert (x.votes, x.wins, x.losses, x.ties, x.both_bad) == (50, 30, 10, 6, 4)


def _simulate(seed: int, true: np.ndarray, n: int) -> pd.DataFrame:
    """Decisive votes drawn from the Bradley–Terry model with strengths ``true``."""
    rng = np.random.default_rng(seed)
    k = len(true)
    a = rng.integers(0, k, n)
    b = (a + rng.integers(1, k, n)) % k
    p_a = 1 / (1 + np.exp(-(true[a] - true[b])))
    vote = np.where(rng.random(n) < p_a, "a", "b")
    return _votes([(f"v{x}", f"v{y}", v) for x, y, v in zip(a, b, vote)])


def test_simulated_votes_recover_known_strengths() -> None:
    """Over ten simulated vote sets the estimates are unbiased and the 95% intervals cover
    the true strengths about 95% of the time."""
    true = np.array([0.0, 0.6, 1.2, -0.6, -1.2])  # mean 0, like the fit
    errors, covered = [], 0
    for seed in range(10):
        got = {r.variant: r for r in ratings(_simulate(seed, true, 3000), b=300, seed=seed)}
        assert [got[f"v{k}"].rating for k in (2, 1, 0, 3, 4)] == sorted(
            (r.rating for r in got.values()), reverse=True)
        for k, value in enumerate(true):
            r = got[f"v{k}"]
            errors.append((r.rating - 1000) / ELO_SCALE - value)
            covered += r.low <= 1000 + ELO_SCALE * value <= r.high
    assert abs(np.mean(errors)) < 0.03 and np.max(np.abs(errors)) < 0.2
    assert 0.85 <= covered / len(errors) <= 1.0


def test_bootstrap_is_seeded_and_a_perfect_record_stays_finite() -> None:
    sim = _simulate(0, np.array([0.0, 0.5, -0.5]), 600)
    first = ratings(sim, b=200, seed=3)
    assert first == ratings(sim, b=200, seed=3) and first != ratings(sim, b=200, seed=4)
    votes = _votes([("x", "y", "a")] * 8 + [("y", "z", "b")] * 3 + [("x", "z", "tie")] * 2)
    board = ratings(votes)
    assert all(np.isfinite([r.rating, r.low, r.high]).all() for r in board)
    assert board[0].variant == "x" and board[-1].variant == "y"  # y never won
    assert board[0].low <= board[0].rating <= board[0].high


def test_votes_are_stored_masked_and_bad_votes_change_nothing(store: ArenaStore) -> None:
    store.record(Vote("base", "cs-support@v2", "Refund to DE89370400440532013000 please",
                      "Sure, mail me at jo@example.com", "We refund in 5 days", "b", "de", "EU"))
    with pytest.raises(InputError):
        store.record(Vote("base", "base", "q", "x", "y", "a", "en"))
    with pytest.raises(InputError):
        store.record(Vote("base", "a1", "q", "x", "y", "maybe", "en"))
    (row,) = store.votes().to_dict(orient="records")
    assert "DE89370400440532013000" not in row["question"] and "[IBAN]" in row["question"]
    assert "jo@example.com" not in row["answer_a"]
    assert (row["lang"], row["region"], row["vote"]) == ("de", "EU", "b")
    assert store.votes("fr").empty


def test_leaderboard_per_language_and_cli(store: ArenaStore) -> None:
    from workbench.cli.feedback_cmds import COMMANDS, arena

    for lang, winner in (("en", "a"), ("en", "a"), ("ja", "b"), ("ja", "tie")):
        store.record(Vote("base", "cs-support@v2", "question", "one", "two", winner, lang, "US"))
    table = leaderboard(store.votes(), by_lang=True, b=100)
    assert set(table["lang"]) == {"en", "ja"} and len(table) == 4
    assert arena in COMMANDS
    res = CliRunner().invoke(arena, ["leaderboard", "--json", "--by-lang", "--bootstrap", "100"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["votes"] == 4 and {r["variant"] for r in out["overall"]} == {"base", "cs-support@v2"}
    assert {r["lang"] for r in out["by_lang"]} == {"en", "ja"}
    assert all(r["low"] <= r["rating"] <= r["high"] for r in out["overall"])
    text = CliRunner().invoke(arena, ["leaderboard"])
    assert text.exit_code == 0 and "Arena leaderboard (4 votes)" in text.output
    assert "Example: workbench arena leaderboard" in CliRunner().invoke(arena, ["leaderboard", "--help"]).output


def test_empty_arena(store: ArenaStore) -> None:
    from workbench.cli.feedback_cmds import arena

    assert ratings(store.votes()) == [] and leaderboard(store.votes()).empty
    res = CliRunner().invoke(arena, ["leaderboard"])
    assert res.exit_code == 0 and "No arena votes yet" in res.output
