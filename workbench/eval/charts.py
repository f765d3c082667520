"""The Evaluate tab's and the HTML report's plotly charts of one run.

A chart is None when it has nothing to draw, so callers hide it instead of drawing axes.
"""
from __future__ import annotations

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from workbench.eval.metrics import summarize
from workbench.eval.summary import METRIC_LABELS, summary_tables
from workbench.console.textfmt import human_duration

BAR_ROW_PX = 210


def _colors(df: pd.DataFrame) -> dict[str, str]:
    """One colour per variant label in the run's order, the same in every chart."""
    palette = px.colors.qualitative.Plotly
    return {str(v): palette[i % len(palette)]
            for i, v in enumerate(dict.fromkeys(df["variant_label"]))}


# A light halo keeps a bar's value readable where its interval line runs through it.
_HALO = "0 0 3px #fff, 0 0 3px #fff"


def _bar_trace(part: pd.DataFrame, key: str, metric: str, name: str, color: str,
               legend: bool) -> go.Bar:
    # The value is written on each bar: a 0% bar has no height, and only its text shows it.
    return go.Bar(x=part[key].astype(str), y=part[metric], name=name, legendgroup=name,
                  showlegend=legend, marker_color=color,
                  text=[f"{v:.0%}" for v in part[metric]], textposition="outside",
                  textangle=0, textfont=dict(color="#222", shadow=_HALO), cliponaxis=False,
                  customdata=part["n"],
                  hovertemplate=f"{name}<br>%{{x}}: %{{y:.1%}} (n=%{{customdata}})<extra></extra>",
                  error_y=dict(type="data", symmetric=False, thickness=1, width=3,
                               color="rgba(60,60,60,0.45)",
                               array=(part[f"{metric}_high"] - part[metric]).tolist(),
                               arrayminus=(part[metric] - part[f"{metric}_low"]).tolist()))


def _bars(table: pd.DataFrame, key: str, metrics: tuple[str, ...], title: str,
          colors: dict[str, str]) -> go.Figure | None:
    """Grouped bars of proportions with 95% intervals, one titled row per metric."""
    shown = [m for m in metrics if m in table and table[m].notna().any()]
    if table.empty or not shown:
        return None
    fig = make_subplots(rows=len(shown), cols=1, shared_xaxes=True, vertical_spacing=0.12
                        if len(shown) > 1 else 0, subplot_titles=[METRIC_LABELS[m] for m in shown])
    for row, metric in enumerate(shown, start=1):
        for label, color in colors.items():  # the run's variant order, base usually first
            part = table[(table["variant_label"].astype(str) == label) & table[metric].notna()]
            if not part.empty:
                fig.add_trace(_bar_trace(part, key, metric, label, color, row == 1), row=row, col=1)
        fig.update_yaxes(range=[0, 1.18], tickformat=".0%", tickvals=[0, 0.5, 1], row=row, col=1)
    fig.update_annotations(font_size=13, x=0, xanchor="left")  # row titles, left-aligned
    fig.update_layout(title=title, barmode="group", height=110 + BAR_ROW_PX * len(shown),
                      legend=dict(orientation="h", yanchor="bottom", y=1.0 + 0.12 / len(shown),
                                  xanchor="right", x=1, title=None),
                      uniformtext=dict(minsize=9, mode="show"), margin=dict(t=100, r=20))
    return fig


def fig_by_language(df: pd.DataFrame) -> go.Figure | None:
    """Accuracy and resolution by language, one bar per variant, with 95% intervals."""
    return _bars(summary_tables(df).by_lang, "lang", ("accuracy", "acc", "resolution_rate"),
                 "Accuracy and resolution by language", _colors(df))


def fig_by_region(df: pd.DataFrame) -> go.Figure | None:
    """Resolution by region; None for a run whose items have no region."""
    return _bars(summary_tables(df).by_region, "region", ("resolution_rate",),
                 "Resolution rate by region", _colors(df))


LATENCY_NOTE = "service time after queueing"
# Above the plot, so a narrow screen keeps the plot's full width.
_TOP_LEGEND = dict(orientation="h", yanchor="bottom", y=1.02, xanchor="right", x=1, title=None)


def fig_latency(df: pd.DataFrame) -> go.Figure | None:
    """P50/P95/P99 latency per variant, in seconds, each bar labelled as people read it."""
    table = summarize(df, ["variant_label"], ("p50_ms", "p95_ms", "p99_ms"))
    if table.empty or table[["p50_ms", "p95_ms", "p99_ms"]].isna().all().all():
        return None
    colors, fig = _colors(df), go.Figure()
    order = {label: i for i, label in enumerate(colors)}
    table = table.sort_values("variant_label", key=lambda c: c.astype(str).map(order))
    for _, row in table.iterrows():
        label, ms = str(row["variant_label"]), [row[c] for c in ("p50_ms", "p95_ms", "p99_ms")]
        fig.add_bar(x=["P50", "P95", "P99"], y=[v / 1000 for v in ms], name=label,
                    marker_color=colors.get(label), text=[human_duration(v) for v in ms],
                    textposition="outside", textangle=0, cliponaxis=False,
                    hovertemplate=f"{label} %{{x}}: %{{text}}<extra></extra>")
    top = max(v for v in table[["p50_ms", "p95_ms", "p99_ms"]].to_numpy().ravel() if pd.notna(v))
    fig.update_layout(title="Latency per variant", barmode="group", legend=_TOP_LEGEND,
                      uniformtext=dict(minsize=9, mode="show"), margin=dict(r=20))
    fig.update_yaxes(title=f"seconds ({LATENCY_NOTE})", range=[0, top / 1000 * 1.2])
    fig.update_xaxes(title="percentile")
    return fig


def fig_latency_cdf(df: pd.DataFrame) -> go.Figure | None:
    """Share of items answered within x seconds; each curve starts at 0 s and the axis runs
    a little past the slowest item, so the last step is not lost on the chart edge."""
    data = df[df["service_ms"].notna()]
    if data.empty:
        return None
    colors, fig = _colors(df), go.Figure()
    for label, part in data.groupby("variant_label", sort=False):
        secs = sorted(part["service_ms"] / 1000)
        share = [i / len(secs) for i in range(len(secs) + 1)]
        fig.add_scatter(x=[0.0, *secs], y=share, name=str(label), mode="lines+markers",
                        line_shape="hv", marker_size=5, line_color=colors.get(str(label)),
                        hovertemplate="%{y:.0%} within %{x:.2f} s<extra>" + str(label) + "</extra>")
    fig.update_layout(title="Latency distribution (CDF)", legend=_TOP_LEGEND, margin=dict(r=20))
    fig.update_xaxes(title=f"seconds ({LATENCY_NOTE})",
                     range=[0, data["service_ms"].max() / 1000 * 1.1])
    fig.update_yaxes(title="share of items", tickformat=".0%", range=[0, 1.05])
    return fig


def figures(df: pd.DataFrame) -> dict[str, go.Figure | None]:
    """The four charts, keyed by the elem_id suffix the UI gives them; None: nothing to draw."""
    return {"lang": fig_by_language(df), "region": fig_by_region(df),
            "latency": fig_latency(df), "cdf": fig_latency_cdf(df)}
