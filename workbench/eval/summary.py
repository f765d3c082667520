"""The run's metrics at four levels of detail, and the names people read for them.

Shared by the report (tables, HTML, CSV) and the charts.
"""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from workbench.eval.metrics import summarize

PROPORTIONS = ("accuracy", "resolution_rate", "acc", "acc_norm", "format_compliance",
               "paraphrase_consistency")
METRIC_LABELS = {"accuracy": "Accuracy", "resolution_rate": "Resolution rate",
                 "acc": "Acc (log-likelihood of each label)",
                 "acc_norm": "Acc norm (log-likelihood per token)",
                 "format_compliance": "Format compliance",
                 "paraphrase_consistency": "Paraphrase consistency (same verdict across phrasings)"}
SCORE_METRICS = ("accuracy", "macro_f1", "resolution_rate", "acc", "acc_norm",
                 "format_compliance", "paraphrase_consistency")
# Column titles of the tables people read (the CSV export keeps the machine names).
COLUMN_TITLES = {"suite": "Suite", "lang": "Language", "region": "Region",
                 "variant_label": "Variant", "variant": "Variant", "n": "Items",
                 "accuracy": "Accuracy", "macro_f1": "Macro-F1",
                 "resolution_rate": "Resolution rate",
                 "acc": "Acc (log-lik.)", "acc_norm": "Acc norm (log-lik.)",
                 "format_compliance": "Format compliance",
                 "paraphrase_consistency": "Paraphrase consistency", "p50_ms": "Latency P50",
                 "p95_ms": "Latency P95", "p99_ms": "Latency P99", "ttft_p50_ms": "TTFT P50",
                 "ttft_p95_ms": "TTFT P95", "tokens_per_s": "Tokens/s"}
KEY_COLUMNS = ("suite", "lang", "region", "variant_label", "n")


@dataclass(frozen=True)
class SummaryTables:
    """The run's metrics at four levels of detail."""

    # One row per variant.
    overall: pd.DataFrame
    # One row per suite × variant.
    by_suite: pd.DataFrame
    # One row per language × variant.
    by_lang: pd.DataFrame
    # One row per region × variant (items with a region only).
    by_region: pd.DataFrame


def summary_tables(df: pd.DataFrame) -> SummaryTables:
    regional = df[df["region"].notna()]
    return SummaryTables(
        overall=summarize(df, ["variant_label"]),
        by_suite=summarize(df, ["suite", "variant_label"]),
        by_lang=summarize(df, ["lang", "variant_label"], ("accuracy", "acc", "resolution_rate",
                                                          "p50_ms")),
        by_region=summarize(regional, ["region", "variant_label"], ("accuracy", "format_compliance",
                                                                    "resolution_rate"))
        if not regional.empty else pd.DataFrame(columns=["region", "variant_label", "n"]))
