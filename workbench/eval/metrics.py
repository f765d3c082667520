"""Metrics, registered by name, computed over a results frame (one row per item × variant).

The results frame (``store.results_frame``) has, per row: ``suite``, ``item_id``, ``variant``,
``variant_label``, ``lang``, ``region``, ``correct`` (the suite's first content scorer passed;
NaN when it does not apply), ``resolved`` (0/1), ``expected_intent``, ``prediction``,
``service_ms``, ``service_ttft_ms`` (latency and TTFT from the start of the item's batch),
``tokens_per_s``.

Definitions:
- accuracy: share of items whose first content scorer (intent_label, verdict or facts, as
  listed in suite.yaml) passed; items where it does not apply are left out.
- resolution_rate: share of items where every applicable check passed and the answer did
  not deflect (``item_outcome``).
- macro_f1: macro-averaged F1 of predicted vs expected intents (classification items only).
- acc / acc_norm (multiple-choice suites): share of items whose expected label has the highest
  summed log-probability (acc) or log-probability per token (acc_norm) among the choices.
- format_compliance: share of answers whose JSON verdict has the required fields and types
  (``verdict_format``); reported on its own, it does not count towards resolution.
- paraphrase_consistency: share of paraphrase groups (items sharing a ``group``: one question
  in several phrasings) whose phrasings all got the same complete verdict (eligible, days,
  payer), right or wrong; a phrasing without a readable verdict makes its group inconsistent.
- p50/p95/p99 of latency and TTFT, median tokens/s, from the engine's metrics. Latency is
  counted from the start of the item's batch: a run queues whole suites at once, and the wait
  behind its own items would swamp the variant's speed.
Proportions come with a 95% Wilson interval and their item count; macro-F1 with a 95%
interval from a seeded bootstrap over the items, and differences between two variants or
runs with a paired bootstrap (``workbench.eval.intervals``).
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import json

import pandas as pd
from scipy.stats import binomtest
# evaluate.load("f1") fetches its module script from the Hub, which is not reachable
# offline, so F1 comes from scikit-learn (the same computation evaluate wraps).
from sklearn.metrics import f1_score

from workbench.errors import UnknownNameError
from workbench.eval.intervals import bootstrap_interval
from workbench.eval.schema import Score
from workbench.eval.scorers import CONTENT_SCORERS, FORMAT_SCORERS


@dataclass(frozen=True)
class MetricValue:
    """One metric over a group of items."""

    # The value (a share in [0, 1], milliseconds, or tokens/s); None when nothing applies.
    value: float | None
    # Items it was computed over.
    n: int
    # 95% interval: Wilson for proportions, seeded bootstrap for macro-F1; None otherwise.
    low: float | None = None
    high: float | None = None


@dataclass(frozen=True)
class ItemOutcome:
    """What one answered item counts as."""

    # The suite's first content scorer passed (None when it does not apply).
    correct: bool | None
    # Every applicable check passed and the answer did not deflect.
    resolved: bool


Metric = Callable[[pd.DataFrame], MetricValue]
METRICS: dict[str, Metric] = {}
# Always reported, whatever a suite lists: the run's latency profile.
LATENCY_METRICS = ("p50_ms", "p95_ms", "p99_ms", "ttft_p50_ms", "ttft_p95_ms", "tokens_per_s")


def register_metric(name: str) -> Callable[[Metric], Metric]:
    def add(fn: Metric) -> Metric:
        METRICS[name] = fn
        return fn
    return add


def get_metric(name: str) -> Metric:
    if name not in METRICS:
        raise UnknownNameError("metric", name, METRICS)
    return METRICS[name]


def item_outcome(scorer_names: list[str] | tuple[str, ...], scores: Mapping[str, Score],
                 generated: bool = True) -> ItemOutcome:
    """Correctness and resolution of one item from its scores; a failed generation is neither."""
    if not generated:
        return ItemOutcome(False, False)
    primary = next((n for n in scorer_names if n in CONTENT_SCORERS), None)
    correct = scores[primary].passed if primary else None
    applicable = [s.passed for name, s in scores.items()
                  if s.passed is not None and name not in FORMAT_SCORERS]
    return ItemOutcome(correct, all(applicable))


def wilson(successes: int, n: int) -> tuple[float | None, float | None]:
    """95% Wilson score interval (scipy); (None, None) for an empty group."""
    if n == 0:
        return None, None
    ci = binomtest(successes, n).proportion_ci(confidence_level=0.95, method="wilson")
    return float(ci.low), float(ci.high)


def proportion(values: pd.Series) -> MetricValue:
    values = pd.to_numeric(values, errors="coerce").dropna()
    n, k = int(len(values)), int(values.sum())
    if n == 0:
        return MetricValue(None, 0)
    low, high = wilson(k, n)
    return MetricValue(k / n, n, low, high)


@register_metric("accuracy")
def accuracy(df: pd.DataFrame) -> MetricValue:
    return proportion(df["correct"])


@register_metric("resolution_rate")
def resolution_rate(df: pd.DataFrame) -> MetricValue:
    return proportion(df["resolved"])


def _score_share(scorer: str) -> Metric:
    def metric(df: pd.DataFrame) -> MetricValue:
        column = f"score:{scorer}"
        return proportion(df[column]) if column in df else MetricValue(None, 0)
    return metric


# Metric -> the results column it needs; summarize's defaults include it only when present.
OPTIONAL_METRICS = {"acc": "score:loglik", "acc_norm": "score:loglik_norm",
                    "format_compliance": "score:verdict_format"}
for _name, _column in OPTIONAL_METRICS.items():
    register_metric(_name)(_score_share(_column.split(":", 1)[1]))


def _verdict(prediction: object) -> tuple | None:
    """(eligible, days, payer) as the verdict scorer read them; None unless all three are there."""
    try:
        read = json.loads(prediction) if isinstance(prediction, str) else None
    except ValueError:
        return None
    values = tuple(read.get(k) for k in ("eligible", "days", "payer")) if isinstance(read, dict) else ()
    return values if values and None not in values else None


@register_metric("paraphrase_consistency")
def paraphrase_consistency(df: pd.DataFrame) -> MetricValue:
    rows = df[df["group"].notna()] if "group" in df else df.iloc[0:0]
    keys = [k for k in ("suite", "variant", "group") if k in rows]
    consistent = []
    for _, phrasings in rows.groupby(keys, sort=False) if not rows.empty else []:
        verdicts = [_verdict(p) for p in phrasings["prediction"]]
        if len(verdicts) >= 2:
            consistent.append(int(None not in verdicts and len(set(verdicts)) == 1))
    return proportion(pd.Series(consistent, dtype=float))


# Metric -> a column it needs values in; summarize and all_metrics leave it out otherwise.
CONDITIONAL_METRICS = {"paraphrase_consistency": "group"}


def available(df: pd.DataFrame, name: str) -> bool:
    """Whether the frame has what ``name`` is computed from (always, for most metrics)."""
    if name in CONDITIONAL_METRICS:
        return CONDITIONAL_METRICS[name] in df and bool(df[CONDITIONAL_METRICS[name]].notna().any())
    return OPTIONAL_METRICS.get(name, "") in ("", *df.columns)


@register_metric("macro_f1")
def macro_f1(df: pd.DataFrame) -> MetricValue:
    rows = df[df["expected_intent"].notna()]
    if rows.empty:
        return MetricValue(None, 0)
    truth = rows["expected_intent"].astype(str)
    pred = rows["prediction"].fillna("(none)").astype(str)
    # Only expected labels are classes: "(none)" answers count as misses, not as a class.
    value = f1_score(truth, pred, labels=sorted(truth.unique()), average="macro", zero_division=0)
    # No closed form for F1's spread: a seeded bootstrap over the items gives its interval.
    low, high = bootstrap_interval(rows, "macro_f1")
    return MetricValue(float(value), int(len(rows)), low, high)


def _quantile(column: str, q: float) -> Metric:
    def metric(df: pd.DataFrame) -> MetricValue:
        values = pd.to_numeric(df[column], errors="coerce").dropna()
        return MetricValue(float(values.quantile(q)) if len(values) else None, int(len(values)))
    return metric


for _q in (50, 95, 99):
    register_metric(f"p{_q}_ms")(_quantile("service_ms", _q / 100))
for _q in (50, 95):
    register_metric(f"ttft_p{_q}_ms")(_quantile("service_ttft_ms", _q / 100))
register_metric("tokens_per_s")(_quantile("tokens_per_s", 0.5))


def summarize(df: pd.DataFrame, by: list[str],
              metrics: tuple[str, ...] = ("accuracy", "macro_f1", "resolution_rate",
                                          *OPTIONAL_METRICS, *CONDITIONAL_METRICS,
                                          *LATENCY_METRICS)) -> pd.DataFrame:
    """One row per group: ``n``, each metric, and ``<metric>_low/_high`` for proportions;
    an optional metric whose scores the frame lacks (no multiple-choice suite) is left out."""
    rows = []
    metrics = tuple(m for m in metrics if available(df, m))
    groups = df.groupby(by, dropna=False, sort=True) if by else [((), df)]
    for key, group in groups:
        key = key if isinstance(key, tuple) else (key,)
        row: dict = dict(zip(by, key)) | {"n": len(group)}
        for name in metrics:
            value = get_metric(name)(group)
            row[name] = value.value
            if value.low is not None:
                row[f"{name}_low"], row[f"{name}_high"] = value.low, value.high
        rows.append(row)
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class VariantSummary:
    """Headline numbers of one variant over a whole run (the CLI's --json line)."""

    # Share of items answered correctly, with its 95% Wilson interval.
    accuracy: float | None
    accuracy_low: float | None
    accuracy_high: float | None
    # Share of items resolved, with its 95% Wilson interval.
    resolution_rate: float | None
    resolution_low: float | None
    resolution_high: float | None
    # Latency percentiles (ms) from the start of each item's batch.
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    # Items answered.
    n: int
    # Every metric the run has for this variant (acc, acc_norm, format compliance, macro-F1,
    # latency...): name -> value, n and the 95% interval where there is one.
    metrics: dict[str, dict] = field(default_factory=dict)

    def as_json(self) -> dict:
        """The keys the CLI's JSON line promises, rounded for reading."""
        def r(x: float | None, nd: int) -> float | None:
            return None if x is None else round(x, nd)
        return {"accuracy": r(self.accuracy, 4), "resolution_rate": r(self.resolution_rate, 4),
                "p50_ms": r(self.p50_ms, 1), "p95_ms": r(self.p95_ms, 1),
                "p99_ms": r(self.p99_ms, 1), "n": self.n,
                "metrics": {name: {k: r(v, 4) if isinstance(v, float) else v for k, v in m.items()}
                            for name, m in self.metrics.items()}}


def variant_summaries(df: pd.DataFrame) -> dict[str, VariantSummary]:
    """Variant name -> its summary, in the run's variant order."""
    out: dict[str, VariantSummary] = {}
    for variant, group in df.groupby("variant", sort=False):
        acc, res = accuracy(group), resolution_rate(group)
        out[str(variant)] = VariantSummary(
            acc.value, acc.low, acc.high, res.value, res.low, res.high,
            get_metric("p50_ms")(group).value, get_metric("p95_ms")(group).value,
            get_metric("p99_ms")(group).value, int(len(group)), all_metrics(group))
    return out


def all_metrics(df: pd.DataFrame) -> dict[str, dict]:
    """Every registered metric the frame has data for, with its interval when it has one."""
    out = {}
    for name in ("accuracy", "macro_f1", "resolution_rate", *OPTIONAL_METRICS,
                 *CONDITIONAL_METRICS, *LATENCY_METRICS):
        if not available(df, name):
            continue
        value = get_metric(name)(df)
        if value.value is not None:
            out[name] = {"value": value.value, "n": value.n, "low": value.low, "high": value.high}
    return out
