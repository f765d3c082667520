"""Dev and test splits side by side, and the generalization gap between them.

A run records each split of a suite as its own suite, ``<name>:<split>`` (and
``<name>:<split>:constrained`` under a grammar). These helpers put the splits of one suite
next to each other per variant, each metric with its 95% interval, and report dev minus test
as the suite's **generalization gap**: how much of the dev score does not carry over to
questions written apart from everything tuned or trained on.
"""
from __future__ import annotations

import pandas as pd

from workbench.eval.metrics import all_metrics
from workbench.eval.suite import split_of
from workbench.eval.summary import COLUMN_TITLES, PROPORTIONS

# The split a card's headline number comes from, and the one the gap is measured against.
HEADLINE_SPLIT = "test"
TUNING_SPLIT = "dev"
# Every proportion a suite may report (summary.PROPORTIONS), in the tables' order.
GAP_METRICS = PROPORTIONS


def family(recorded: str) -> str:
    """The suite a recorded name belongs to, without its split (decoding suffix kept)."""
    split = split_of(recorded)
    return recorded.replace(f":{split}", "", 1) if split else recorded


def split_summary(df: pd.DataFrame) -> dict[str, dict]:
    """Suite -> ``{split: {variant: metrics}, "generalization_gap": {variant: {metric: dev - test}}}``
    for every suite of the run that has splits; each metric has value, n, low and high."""
    out: dict[str, dict] = {}
    if df.empty:
        return out
    for name, rows in df.groupby("suite", sort=True):
        split = split_of(str(name))
        if split is None:
            continue
        entry = out.setdefault(family(str(name)), {})
        entry[split] = {str(v): all_metrics(g) for v, g in rows.groupby("variant_label", sort=False)}
    for entry in out.values():
        gaps = _gaps(entry.get(TUNING_SPLIT, {}), entry.get(HEADLINE_SPLIT, {}))
        if gaps:
            entry["generalization_gap"] = gaps
    return out


def _gaps(dev: dict[str, dict], test: dict[str, dict]) -> dict[str, dict[str, float]]:
    gaps: dict[str, dict[str, float]] = {}
    for variant in dev.keys() & test.keys():
        both = [m for m in GAP_METRICS if m in dev[variant] and m in test[variant]]
        if both:
            gaps[variant] = {m: dev[variant][m]["value"] - test[variant][m]["value"] for m in both}
    return gaps


def split_table(df: pd.DataFrame) -> pd.DataFrame:
    """For people: one row per suite × variant × metric (titled), dev and test as
    ``value [low–high] (n)`` text, and the gap in points; reports, the CLI and the Evaluate tab."""
    rows = []
    for suite, entry in split_summary(df).items():
        variants = list(dict.fromkeys(v for s in (TUNING_SPLIT, HEADLINE_SPLIT)
                                      for v in entry.get(s, {})))
        for variant in variants:
            dev = entry.get(TUNING_SPLIT, {}).get(variant, {})
            test = entry.get(HEADLINE_SPLIT, {}).get(variant, {})
            gap = entry.get("generalization_gap", {}).get(variant, {})
            for metric in GAP_METRICS:
                if metric in dev or metric in test:
                    rows.append({"suite": suite, "variant": variant,
                                 "metric": COLUMN_TITLES.get(metric, metric),
                                 "dev": _text(dev.get(metric)), "test": _text(test.get(metric)),
                                 "gap": f"{100 * gap[metric]:+.1f} pts" if metric in gap else "–"})
    return pd.DataFrame(rows, columns=["suite", "variant", "metric", "dev", "test", "gap"])


def _text(m: dict | None) -> str:
    if not m or m.get("value") is None:
        return "–"
    if m.get("low") is None:
        return f"{100 * m['value']:.1f}% ({m['n']})"
    return f"{100 * m['value']:.1f}% [{100 * m['low']:.1f}–{100 * m['high']:.1f}] ({m['n']})"
