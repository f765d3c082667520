"""The Evaluate tab's tables and charts (workbench.eval.report): titles people read, charts
that are left out when they have nothing to draw, and readable values."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from workbench.eval.charts import (fig_by_language, fig_by_region, fig_latency, fig_latency_cdf,
                                   figures)
from workbench.eval.report import (compare_runs, latency_table, readable_comparison,
                                   readable_differences, scores_table, summary_tables,
                                   variant_differences)


def frame(label: str = "base", variant: str = "__base__", n: int = 6, correct: float = 0.0,
          regions: list | None = None, service_ms: list | None = None) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({
        "suite": "s", "item_id": [f"i{i}" for i in range(n)], "variant": variant,
        "variant_label": label, "lang": [("en", "de")[i % 2] for i in range(n)],
        "region": regions or [None] * n, "correct": float(correct), "resolved": int(correct),
        "expected_intent": None, "prediction": None, "answer": "",
        "service_ms": service_ms or list(rng.uniform(900, 2500, n)),
        "service_ttft_ms": 85.0, "tokens_per_s": 12.34})


def test_region_chart_is_none_without_regions_and_drawn_with_them() -> None:
    assert fig_by_region(frame()) is None
    assert figures(frame())["region"] is None
    fig = fig_by_region(frame(regions=["EU", "US", "EU", "US", "EU", "US"], correct=1.0))
    assert fig is not None
    assert sorted(fig.data[0].x) == ["EU", "US"]


def test_language_bars_carry_their_value_as_text_even_at_zero() -> None:
    fig = fig_by_language(pd.concat([frame(), frame("a1@v1", "a1", correct=1.0)]))
    bars = [t for t in fig.data if t.type == "bar"]
    assert bars and all(t.text is not None and len(t.text) == len(t.x) for t in bars)
    texts = {t.name: set(t.text) for t in bars}
    assert texts["base"] == {"0%"} and texts["a1@v1"] == {"100%"}
    assert all(t.textposition == "outside" for t in bars)


def test_language_chart_titles_each_metric_row_horizontally() -> None:
    fig = fig_by_language(frame())
    titles = [a.text for a in fig.layout.annotations]
    assert titles == ["Accuracy", "Resolution rate"]  # no "metric=" prefix, one per row
    assert all(a.textangle in (None, 0) for a in fig.layout.annotations)
    assert fig.layout.yaxis.tickformat == ".0%"


def test_latency_cdf_starts_at_zero_and_leaves_room_after_the_slowest_item() -> None:
    df = pd.concat([frame(service_ms=[1000, 1500, 2000, 2500, 3000, 4000]),
                    frame("a1@v1", "a1", service_ms=[500] * 6)])
    fig = fig_latency_cdf(df)
    assert len(fig.data) == 2
    for trace in fig.data:
        assert trace.x[0] == 0 and trace.y[0] == 0 and trace.y[-1] == pytest.approx(1.0)
    assert max(fig.data[0].x) == pytest.approx(4.0)  # seconds, not ms
    assert fig.layout.xaxis.range[1] > 4.0
    title = fig.layout.xaxis.title.text
    assert "seconds" in title and "batch start" not in title


def test_latency_bars_are_labelled_as_people_read_durations() -> None:
    fig = fig_latency(frame(service_ms=[1200] * 6))
    assert list(fig.data[0].text) == ["1.2 s", "1.2 s", "1.2 s"]
    assert "batch start" not in fig.layout.title.text
    assert fig_latency(frame().assign(service_ms=np.nan)) is None
    assert fig_latency_cdf(frame().assign(service_ms=np.nan)) is None


def test_scores_table_has_titled_columns_and_drops_empty_metrics() -> None:
    t = summary_tables(pd.concat([frame(correct=1.0), frame("a1@v1", "a1")]))
    table = scores_table(t.by_suite)
    assert list(table.columns) == ["Suite", "Variant", "Items", "Accuracy", "Resolution rate"]
    # No intent items in this frame: macro-F1 is empty in every row and left out.
    assert "Macro-F1" not in table.columns and "macro_f1" not in table.columns
    row = table.set_index("Variant").loc["base"]
    assert row["Accuracy"].startswith("100.0% [") and row["Items"] == 6


def test_latency_table_shows_durations_and_tokens_per_second() -> None:
    t = summary_tables(frame(service_ms=[156448] * 6))
    table = latency_table(t.by_suite)
    assert {"Latency P50", "TTFT P95", "Tokens/s"} <= set(table.columns)
    assert not any("_ms" in c for c in table.columns)
    assert table.loc[0, "Latency P50"] == "2 min 36 s" and table.loc[0, "TTFT P50"] == "85 ms"
    assert table.loc[0, "Tokens/s"] == "12.3"


def test_differences_read_as_titles_and_base_is_base() -> None:
    a = pd.concat([frame(), frame("a1@v1", "a1")])
    b = pd.concat([frame(), frame("a1@v2", "a1", correct=1.0)])
    diff = compare_runs(a, b)
    assert set(diff["variant"]) == {"base", "a1"}
    shown = readable_comparison(diff)
    assert list(shown.columns) == ["Variant", "Metric", "Run A", "Run B", "Δ", "Δ 95% CI",
                                   "Verdict"]
    acc = shown[(shown["Variant"] == "a1") & (shown["Metric"] == "Accuracy")].iloc[0]
    assert acc["Run A"] == "0.0%" and acc["Run B"] == "100.0%" and acc["Δ"] == "+100.0 pts"
    assert acc["Verdict"] == "better"
    p50 = shown[(shown["Variant"] == "base") & (shown["Metric"] == "Latency P50")].iloc[0]
    assert p50["Δ"] == "+0 ms" and p50["Run A"].endswith(" s") and p50["Verdict"] == ""
    within = readable_differences(variant_differences(b))
    assert {"Metric", "Baseline", "Value", "Against"} <= set(within.columns)
    assert "__base__" not in within.to_string() and "__base__" not in shown.to_string()
