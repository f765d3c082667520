"""Monitor tab: live serving figures over the last 5, 15 or 60 minutes.

Every figure comes from the workbench's telemetry (:mod:`workbench.telemetry.collector`), the same
ring buffer of finished requests and the same counters ``/metrics`` exports; nothing here
keeps its own bookkeeping. A ``gr.Timer`` redraws every few seconds while the tab is open.

The charts split the window into equal time buckets and summarise each bucket's records
with ``telemetry.summarize``; rates are counts over the bucket's width (summarize's own rate
divides by the time since a buffer's first record, which suits whole windows, not buckets).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime

import gradio as gr
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from workbench.errors import WorkbenchError
from workbench.routing import canary
from workbench.routing.report import RouteReport, arm_stats, report_table
from workbench.routing.store import default_store
from workbench.service.workbench import Workbench
from workbench.telemetry.collector import RequestRecord, Telemetry, WindowStats, summarize
from workbench.telemetry.cost import PRICE_ENV, cost_line, price_from_env

WINDOWS = {"5 min": 300.0, "15 min": 900.0, "60 min": 3600.0}
REFRESH_S = 3.0
BUCKETS = 30
ALL = "all"
VARIANT_COLORS = ("#1f77b4", "#ff7f0e", "#17becf", "#e377c2", "#bcbd22", "#8c564b")
PANELS = ("Requests/s", "Output tokens/s", "TTFT (s)", "End-to-end latency (s)",
          "Running and waiting", "Mean batch size", "Prefix-cache hit rate", "Process memory (MiB)")


@dataclass(frozen=True)
class Bucket:
    """One time bucket of one variant (``all`` or ``name@version``)."""

    # Bucket end, wall-clock seconds.
    end: float
    # Requests and output tokens per second over the bucket's width.
    requests_per_s: float
    tokens_per_s: float
    # Everything else, from telemetry.summarize.
    stats: WindowStats


def bucket_series(records: list[RequestRecord], window_s: float, now: float,
                  buckets: int = BUCKETS) -> dict[str, list[Bucket]]:
    """Per variant (and ``all``), ``buckets`` equal slices of the window ending at ``now``."""
    width = window_s / buckets
    groups: dict[str, list[RequestRecord]] = {ALL: records}
    for r in records:
        groups.setdefault(r.ref, []).append(r)
    out: dict[str, list[Bucket]] = {}
    for ref, recs in groups.items():
        slots: list[list[RequestRecord]] = [[] for _ in range(buckets)]
        for r in recs:
            i = min(int((r.finished_at - (now - window_s)) // width), buckets - 1)  # now: last
            if 0 <= i and r.finished_at <= now:
                slots[i].append(r)
        start = now - window_s
        out[ref] = [Bucket(start + (i + 1) * width, len(s) / width,
                           sum(r.completion_tokens for r in s) / width,
                           summarize(s, width, start + (i + 1) * width)) for i, s in enumerate(slots)]
    return out


def _times(series: list[Bucket]) -> list[datetime]:
    return [datetime.fromtimestamp(b.end) for b in series]  # local time, as on the wall clock


def _line(fig: go.Figure, series: list[Bucket], values: list, name: str, row: int, col: int,
          color: str, dash: str | None = None, legend: bool = True) -> None:
    fig.add_trace(go.Scatter(x=_times(series), y=values, name=name, mode="lines+markers",
                             line={"color": color, "dash": dash or "solid"}, marker={"size": 4},
                             legendgroup=name, showlegend=legend, connectgaps=False), row=row, col=col)


def monitor_figure(series: dict[str, list[Bucket]], window_label: str) -> go.Figure:
    """The eight panels of the tab; per-variant lines where a figure is per adapter."""
    fig = make_subplots(rows=4, cols=2, subplot_titles=PANELS, vertical_spacing=0.08)
    variants = [ref for ref in series if ref != ALL]
    every = series.get(ALL, [])
    for n, ref in enumerate(variants):  # one colour per variant in every per-variant panel
        s, color = series[ref], VARIANT_COLORS[n % len(VARIANT_COLORS)]
        _line(fig, s, [b.requests_per_s for b in s], ref, 1, 1, color)
        _line(fig, s, [b.tokens_per_s for b in s], ref, 1, 2, color, legend=False)
        _line(fig, s, [b.stats.prefix_hit_rate for b in s], ref, 4, 1, color, legend=False)
    for key, dash in (("p50", None), ("p95", "dash"), ("p99", "dot")):  # all variants
        _line(fig, every, [getattr(b.stats, f"ttft_{key}_s") for b in every], f"TTFT {key}", 2, 1,
              "#444444", dash)
        _line(fig, every, [getattr(b.stats, f"e2e_{key}_s") for b in every], f"e2e {key}", 2, 2,
              "#8c564b", dash)
    _line(fig, every, [b.stats.mean_running for b in every], "running", 3, 1, "#2ca02c")
    _line(fig, every, [b.stats.mean_waiting for b in every], "waiting", 3, 1, "#d62728", "dash")
    _line(fig, every, [b.stats.mean_batch for b in every], "mean batch", 3, 2, "#9467bd")
    _line(fig, every, [_mib(b.stats.rss_peak_bytes) for b in every], "RSS (peak in bucket)", 4, 2,
          "#7f7f7f")
    fig.update_yaxes(rangemode="tozero")
    fig.update_yaxes(range=[0, 1.05], row=4, col=1)
    fig.update_layout(height=980, margin={"l": 40, "r": 20, "t": 60, "b": 30},
                      title=f"Last {window_label} · {sum(b.requests_per_s > 0 for b in every)} of "
                            f"{len(every)} buckets with requests", legend={"orientation": "h", "y": -0.05})
    return fig


def _mib(value: int | None) -> float | None:
    return None if value is None else round(value / 2**20, 1)


def _fmt(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def variant_table(tel: Telemetry, window_s: float) -> pd.DataFrame:
    """One row per variant in the window, plus the whole, then one per A/B route arm: the
    figures the charts plot."""
    rows = {ALL: tel.window(window_s), **tel.by_adapter(window_s), **tel.by_route_arm(window_s)}
    return pd.DataFrame([{
        "variant": ref, "requests": s.requests, "req/s": _fmt(s.requests_per_s, 3),
        "TTFT p50/p95/p99 s": " / ".join(_fmt(v) for v in (s.ttft_p50_s, s.ttft_p95_s, s.ttft_p99_s)),
        "e2e p50/p95/p99 s": " / ".join(_fmt(v) for v in (s.e2e_p50_s, s.e2e_p95_s, s.e2e_p99_s)),
        "tok/s": _fmt(s.tokens_per_s, 1), "mean batch": _fmt(s.mean_batch, 1),
        "prefix hit": "–" if s.prefix_hit_rate is None else f"{s.prefix_hit_rate:.0%}",
        "errors": s.errors, "cancelled": s.cancelled} for ref, s in rows.items()])


def live_markdown(wb: Workbench, extra: str = "") -> str:
    """Now: engine load, memory and the adapters served with their versions (``extra``, e.g.
    the cost line, goes before the update time)."""
    live = wb.telemetry.live()
    served = [wb.variant_label(a) for a in live.loaded_adapters] or ["none"]
    cuda = "" if live.cuda_allocated_bytes is None else f" · GPU memory {_mib(live.cuda_allocated_bytes):,.0f} MiB"
    if live.cuda_utilization_percent is not None:
        cuda += f" · GPU busy {live.cuda_utilization_percent:.0f}%"
    if live.decode != "eager":
        cuda += f" · decode steps: {live.decode}"
    canaries = "".join(f"  \n**Canary** {line}" for line in _canaries(wb))
    canaries += "".join(f"  \n**Replica** {r.url}: {'up' if r.up else '**down**'} · "
                        f"{r.in_flight} in flight · {len(r.adapters)} adapters" for r in live.replicas)
    return (f"**Now** · running {live.running} · waiting {live.waiting} · process memory "
            f"{_mib(live.rss_bytes):,.0f} MiB{cuda}  \n**Adapters served**: {', '.join(served)}"
            f"{canaries}{extra}  \n<small>Updated {time.strftime('%H:%M:%S')} · every {REFRESH_S:.0f} s</small>")


def cost_markdown(tel: Telemetry, window_s: float, window_label: str) -> str:
    """The window's cost per 1,000 requests when ``WORKBENCH_PRICE_PER_HOUR`` is set ("" when
    not); a bad price is said, not raised, so the rest of the Monitor still draws."""
    try:
        price = price_from_env()
    except WorkbenchError as exc:
        return f"  \n**Cost** · {exc.message}"
    if price is None:
        return ""
    s = tel.window(window_s)
    return f"  \n**Cost** · {cost_line(price, s.requests, s.requests_per_s, f'over the last {window_label}')}"


def _canaries(wb: Workbench) -> list[str]:
    """The automatic guards' state; the store being away must not blank the Monitor."""
    try:
        return canary.overview(default_store(), wb.chatlog)
    except WorkbenchError as exc:
        return [f"unavailable ({exc.message})"]


OUTCOME_HEADERS = ["variant", "answers", "resolution [95% CI]", "escalation [95% CI]",
                   "rating [95% CI]"]


def outcome_table(wb: Workbench, window_s: float) -> pd.DataFrame:
    """Customer outcomes per variant over the window's answers, from every face and replica."""
    try:
        rows = wb.chatlog.outcome_rows(time.time() - window_s)
    except WorkbenchError:
        return pd.DataFrame(columns=OUTCOME_HEADERS)
    by_variant: dict[str, list[dict]] = {}
    for row in rows:
        by_variant.setdefault(row["variant"], []).append(row)
    table = [report_table(RouteReport("", "", 0.0, {}, {v: arm_stats(v, 0.0, rs)}))[0]
             for v, rs in sorted(by_variant.items())]
    return pd.DataFrame([[r[0], r[3], r[4], r[5], r[6]] for r in table], columns=OUTCOME_HEADERS)


def refresh(wb: Workbench, window_label: str) -> tuple[go.Figure, pd.DataFrame, str, pd.DataFrame]:
    tel = wb.telemetry
    window_s = WINDOWS.get(window_label, WINDOWS["5 min"])
    now = tel.clock()
    series = bucket_series(tel.records(window_s), window_s, now)
    return (monitor_figure(series, window_label), variant_table(tel, window_s),
            live_markdown(wb, cost_markdown(tel, window_s, window_label)), outcome_table(wb, window_s))


def build_monitor_tab(wb: Workbench, tab: gr.Tab) -> None:
    gr.Markdown("Live serving figures from the same telemetry `/metrics` exports; "
                "`workbench top` prints them in a terminal. With a price per replica-hour in "
                f"`{PRICE_ENV}`, the window's cost per 1,000 requests shows beside them.")
    with gr.Row():
        window = gr.Radio(list(WINDOWS), value="5 min", label="Window", elem_id="monitor-window")
        live = gr.Markdown(elem_id="monitor-live")
    table = gr.Dataframe(label="Per variant and per A/B route arm", interactive=False,
                         elem_id="monitor-table")
    outcomes = gr.Dataframe(label="Customer outcomes per variant (feedback on the window's answers)",
                            headers=OUTCOME_HEADERS, interactive=False, elem_id="monitor-outcomes")
    plot = gr.Plot(label="Charts", elem_id="monitor-plot")
    # Off until the tab is first opened, so sessions that never look cost the server nothing.
    timer = gr.Timer(REFRESH_S, active=False)
    outputs = [plot, table, live, outcomes]
    fn = lambda w: refresh(wb, w)  # noqa: E731
    timer.tick(fn, window, outputs, show_progress="hidden")
    window.change(fn, window, outputs, show_progress="hidden")
    tab.select(fn, window, outputs, show_progress="hidden").then(
        lambda: gr.Timer(active=True), None, timer)
