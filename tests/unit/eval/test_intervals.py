"""Seeded bootstrap intervals for macro-F1 and paired differences, and the compare view."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import f1_score

from workbench.errors import InputError, UnknownNameError
from workbench.eval.intervals import (bootstrap_interval, get_statistic, paired_difference)
from workbench.eval.metrics import get_metric
from workbench.eval.report import compare_runs, display_table, summary_tables, variant_differences

LABELS = ["order_tracking", "refund_status", "cancel_order", "complaint"]


def frame(variant: str, correct: np.ndarray, suite: str = "s", preds: list | None = None) -> pd.DataFrame:
    n = len(correct)
    truth = [LABELS[i % len(LABELS)] for i in range(n)]
    if preds is None:
        preds = [t if c else LABELS[(i + 1) % len(LABELS)] for i, (t, c) in enumerate(zip(truth, correct))]
    return pd.DataFrame({"suite": suite, "item_id": [f"i{i:03d}" for i in range(n)],
                         "variant": variant, "variant_label": variant, "lang": "en",
                         "region": None, "correct": correct.astype(float),
                         "resolved": correct.astype(int), "expected_intent": truth,
                         "prediction": preds, "answer": "", "service_ms": 1.0,
                         "service_ttft_ms": 1.0, "tokens_per_s": 1.0})


def test_vectorised_macro_f1_matches_sklearn() -> None:
    rng = np.random.default_rng(1)
    for _ in range(20):
        n = int(rng.integers(5, 60))
        df = frame("v", rng.random(n) < 0.5)
        df.loc[rng.random(n) < 0.2, "prediction"] = None  # unparsed answers
        stat = get_statistic("macro_f1")
        ours = stat.compute(stat.prepare(df), np.arange(n)[None, :])[0]
        truth = df["expected_intent"]
        ref = f1_score(truth, df["prediction"].fillna("(none)"), labels=sorted(truth.unique()),
                       average="macro", zero_division=0)
        assert ours == pytest.approx(ref)


def test_macro_f1_interval_is_seeded_and_brackets_the_value() -> None:
    df = frame("v", np.random.default_rng(2).random(120) < 0.6)
    first, again = bootstrap_interval(df), bootstrap_interval(df)
    assert first == again and bootstrap_interval(df, seed=7) != first
    value = get_metric("macro_f1")(df)
    assert value.low == first[0] and value.high == first[1]
    assert value.low < value.value < value.high
    small = frame("v", np.random.default_rng(2).random(24) < 0.6)
    assert (small_ci := bootstrap_interval(small))[1] - small_ci[0] > first[1] - first[0]
    shown = display_table(summary_tables(df).overall)["macro_f1"].iloc[0]
    assert shown == f"{value.value:.2f} [{value.low:.2f}–{value.high:.2f}]"


def test_paired_difference_verdicts() -> None:
    rng = np.random.default_rng(3)
    base = rng.random(150) < 0.3
    same = paired_difference(frame("a", base), frame("b", base), "accuracy")
    assert same.diff == 0 and same.low == 0 and same.high == 0 and same.verdict == "within noise"
    better = base | (rng.random(150) < 0.5)
    d = paired_difference(frame("a", base), frame("b", better), "resolution_rate")
    assert d.diff > 0.2 and d.low > 0 and d.verdict == "better" and d.n == 150
    worse = paired_difference(frame("a", better), frame("b", base), "macro_f1")
    assert worse.verdict == "worse"
    flip = base.copy()
    flip[:3] = ~flip[:3]  # three items change: noise
    assert paired_difference(frame("a", base), frame("b", flip), "accuracy").verdict == "within noise"


def test_only_shared_items_are_paired_and_bad_input_is_refused() -> None:
    a, b = frame("a", np.ones(10, bool)), frame("b", np.zeros(6, bool))
    assert paired_difference(a, b, "accuracy").n == 6
    with pytest.raises(InputError, match="one row per item"):
        paired_difference(pd.concat([a, a]), b, "accuracy")
    with pytest.raises(UnknownNameError, match="Did you mean"):
        paired_difference(a, b, "acuracy")


def test_paired_interval_covers_the_true_difference() -> None:
    """Simulated variants with a known +8-point gap on correlated items: the 95% interval
    covers +0.08 in about 95% of repetitions, and pairing makes it narrower than treating
    the two sides as independent samples would."""
    rng = np.random.default_rng(4)
    covered, widths = 0, []
    reps, n = 200, 200
    for r in range(reps):
        difficulty = rng.random(n)
        a = difficulty < 0.5
        b = difficulty < 0.6  # the same items plus 10% more
        noise = rng.random(n) < 0.1
        a, b = a ^ noise, b ^ noise
        d = paired_difference(frame("a", a), frame("b", b), "accuracy", reps=500, seed=r)
        # Items in [0.5, 0.6) gain +1, or lose 1 where the shared noise flipped them.
        covered += d.low <= 0.10 * (1 - 2 * 0.1) <= d.high
        widths.append(d.high - d.low)
    assert 0.90 <= covered / reps <= 0.995
    independent = 2 * 1.96 * np.sqrt(2 * 0.25 / n)
    assert np.mean(widths) < independent / 2


def test_compare_view_says_whether_a_change_is_noise() -> None:
    rng = np.random.default_rng(5)
    base, adapter = rng.random(180) < 0.05, rng.random(180) < 0.3
    # As the store gives them: engine name __base__, label base.
    base_a = frame("__base__", base).assign(variant_label="base")
    run_a = pd.concat([base_a, frame("a1", base)])
    run_b = pd.concat([base_a, frame("a1", adapter)])
    view = compare_runs(run_a, run_b).set_index("variant")
    assert view.loc["a1", "accuracy Δ verdict"] == "better"
    assert view.loc["base", "resolution_rate Δ verdict"] == "within noise"
    assert view.loc["a1", "accuracy Δ 95% CI"].endswith("pts")
    diffs = variant_differences(run_b)
    row = diffs[(diffs["metric"] == "accuracy")].iloc[0]
    assert row["variant"] == "a1" and row["vs"] == "base" and row["verdict"] == "better"
    assert set(diffs["metric"]) == {"accuracy", "macro_f1", "resolution_rate"}
