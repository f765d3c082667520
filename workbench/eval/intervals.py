"""Seeded bootstrap intervals: macro-F1 of one variant, and paired differences of two.

Proportions keep their Wilson intervals (``metrics.wilson``). Macro-F1 has no closed form,
so its 95% interval is the 2.5th-97.5th percentile of the statistic over ``B`` resamples
of the items (seeded: the same data always gives the same interval). A difference between
two variants (or two runs of one variant) is taken on the items both answered, resampling
those items jointly (paired bootstrap), so item difficulty cancels out; the difference is
"more than noise" when its interval excludes 0.

Statistics are registered by name (:func:`register_difference`); each maps a results frame
to per-item arrays and computes the value for a whole matrix of resampled indices at once.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from workbench.errors import InputError, UnknownNameError

B = 2000
SEED = 0
KEYS = ["suite", "item_id"]


@dataclass(frozen=True)
class Statistic:
    """A metric that can be evaluated on resampled items."""

    # Per-item arrays from the frame (rows where the metric applies keep their values).
    prepare: Callable[[pd.DataFrame], dict[str, np.ndarray]]
    # Value per resample: arrays and an index matrix [R, n] -> [R].
    compute: Callable[[dict[str, np.ndarray], np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Difference:
    """B minus A on the items both answered, with its paired-bootstrap interval."""

    metric: str
    # Values of A and B on the shared items, and their difference (b - a).
    a: float | None
    b: float | None
    diff: float | None
    # 95% interval of the difference.
    low: float | None
    high: float | None
    # Items both sides answered (where the metric applies).
    n: int

    @property
    def verdict(self) -> str:
        """"better" / "worse" when the interval excludes 0, else "within noise"."""
        if self.low is None or self.high is None:
            return "n/a"
        if self.low > 0:
            return "better"
        if self.high < 0:
            return "worse"
        return "within noise"


STATISTICS: dict[str, Statistic] = {}


def register_difference(name: str) -> Callable[[Statistic], Statistic]:
    def add(stat: Statistic) -> Statistic:
        STATISTICS[name] = stat
        return stat
    return add


def get_statistic(name: str) -> Statistic:
    if name not in STATISTICS:
        raise UnknownNameError("bootstrap metric", name, STATISTICS)
    return STATISTICS[name]


# ---- statistics ----------------------------------------------------------------------------
def _share(column: str) -> Statistic:
    def prepare(df: pd.DataFrame) -> dict[str, np.ndarray]:
        values = pd.to_numeric(df[column], errors="coerce") if column in df else pd.Series(
            np.nan, index=df.index)
        return {"x": values.to_numpy(dtype=float)}

    def compute(arrays: dict[str, np.ndarray], idx: np.ndarray) -> np.ndarray:
        sample = arrays["x"][idx]
        if not sample.size:
            return np.full(len(idx), np.nan)
        # nanmean warns on an all-missing resample; an empty share is simply unknown (NaN).
        seen = ~np.isnan(sample)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(seen, sample, 0.0).sum(axis=1) / seen.sum(axis=1)

    return Statistic(prepare, compute)


for _name, _column in (("accuracy", "correct"), ("resolution_rate", "resolved"),
                       ("acc", "score:loglik"), ("acc_norm", "score:loglik_norm"),
                       ("format_compliance", "score:verdict_format")):
    register_difference(_name)(_share(_column))


def _f1_prepare(df: pd.DataFrame) -> dict[str, np.ndarray]:
    truth = df["expected_intent"]
    labels = sorted(truth.dropna().astype(str).unique())
    code = {label: i for i, label in enumerate(labels)}
    # -1: not a classification item (ignored); len(labels): a prediction outside the labels.
    t = np.array([code.get(str(v), -1) if pd.notna(v) else -1 for v in truth])
    p = np.array([code.get(str(v), len(labels)) for v in df["prediction"].fillna("(none)")])
    return {"t": t, "p": p, "k": np.array([len(labels)])}


def _f1_compute(arrays: dict[str, np.ndarray], idx: np.ndarray) -> np.ndarray:
    """Macro-F1 over the full sample's labels for every row of ``idx`` (sklearn's
    ``average="macro", zero_division=0`` with the labels fixed)."""
    k = int(arrays["k"][0])
    t, p = arrays["t"][idx], arrays["p"][idx]       # [R, n]
    valid = t >= 0
    if k == 0 or not valid.any():
        return np.full(len(idx), np.nan)
    scores = np.zeros((len(idx), k))
    for c in range(k):
        tc, pc = (t == c) & valid, (p == c) & valid
        tp = (tc & pc).sum(axis=1)
        denom = tc.sum(axis=1) + pc.sum(axis=1)
        scores[:, c] = np.where(denom > 0, 2 * tp / np.maximum(denom, 1), 0.0)
    return scores.mean(axis=1)


register_difference("macro_f1")(Statistic(_f1_prepare, _f1_compute))


# ---- intervals -----------------------------------------------------------------------------
def _indices(n: int, b: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, n, size=(b, n))   # [B, n]


def bootstrap_interval(df: pd.DataFrame, metric: str = "macro_f1", b: int = B,
                       seed: int = SEED) -> tuple[float | None, float | None]:
    """95% percentile interval of ``metric`` over ``b`` seeded resamples of the rows."""
    stat = get_statistic(metric)
    if df.empty:
        return None, None
    values = stat.compute(stat.prepare(df), _indices(len(df), b, seed))
    values = values[~np.isnan(values)]
    if not len(values):
        return None, None
    low, high = np.percentile(values, [2.5, 97.5])
    return float(low), float(high)


def paired_difference(a: pd.DataFrame, b: pd.DataFrame, metric: str, reps: int = B,
                      seed: int = SEED) -> Difference:
    """``metric(b) - metric(a)`` on the items both frames hold (matched on suite and item),
    with a 95% paired-bootstrap interval: one index matrix resamples both sides."""
    stat = get_statistic(metric)
    for side in (a, b):
        if side[KEYS].duplicated().any():
            raise InputError("A paired comparison needs one row per item on each side; "
                             "pick one variant of each run.")
    both = a.merge(b[KEYS], on=KEYS).set_index(KEYS).index
    a_rows = a.set_index(KEYS).loc[both].reset_index()
    b_rows = b.set_index(KEYS).loc[both].reset_index()
    arr_a, arr_b = stat.prepare(a_rows), stat.prepare(b_rows)
    n = len(both)
    if n == 0:
        return Difference(metric, None, None, None, None, None, 0)
    whole = np.arange(n)[None, :]
    va, vb = float(stat.compute(arr_a, whole)[0]), float(stat.compute(arr_b, whole)[0])
    if np.isnan(va) or np.isnan(vb):
        return Difference(metric, None, None, None, None, None, 0)
    idx = _indices(n, reps, seed)
    diffs = stat.compute(arr_b, idx) - stat.compute(arr_a, idx)
    diffs = diffs[~np.isnan(diffs)]
    low, high = np.percentile(diffs, [2.5, 97.5]) if len(diffs) else (np.nan, np.nan)
    applies = int(np.sum(~np.isnan(arr_a["x"]) & ~np.isnan(arr_b["x"]))) if "x" in arr_a else \
        int(np.sum(arr_a["t"] >= 0))
    return Difference(metric, va, vb, vb - va, float(low), float(high), applies)
