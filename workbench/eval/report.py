"""Summary tables, plotly charts, a self-contained HTML report and a CSV export of a run.

Everything starts from ``EvalStore.results_frame`` (one row per item × variant), so the CLI,
the Evaluate tab and the HTML report show the same numbers.
"""
from __future__ import annotations

import html
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

from workbench.errors import InputError, StoreError
from workbench.eval.intervals import Difference, paired_difference
from workbench.eval.metrics import summarize
from workbench.eval.store import EvalStore, RunRecord

PROPORTIONS = ("accuracy", "resolution_rate", "acc", "acc_norm", "format_compliance")
TABLE_METRICS = ("accuracy", "macro_f1", "resolution_rate", "p50_ms", "p95_ms", "p99_ms",
                 "ttft_p50_ms", "tokens_per_s")
METRIC_LABELS = {"accuracy": "Accuracy", "resolution_rate": "Resolution rate",
                 "acc": "Choice accuracy (log-likelihood)",
                 "acc_norm": "Choice accuracy per token (log-likelihood)",
                 "format_compliance": "Format compliance"}


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


def display_table(table: pd.DataFrame) -> pd.DataFrame:
    """Readable copy: proportions as "71.0% [60.2–80.1] (n=100)", latencies in whole ms."""
    out = pd.DataFrame(index=table.index)
    for col in table.columns:
        if col.endswith(("_low", "_high")):
            continue
        if col in PROPORTIONS and f"{col}_low" in table:
            out[col] = [_pct(v, lo, hi) for v, lo, hi in
                        zip(table[col], table[f"{col}_low"], table[f"{col}_high"])]
        elif col == "macro_f1" and "macro_f1_low" in table:
            out[col] = [_f1(v, lo, hi) for v, lo, hi in
                        zip(table[col], table["macro_f1_low"], table["macro_f1_high"])]
        elif col in ("macro_f1", "tokens_per_s"):
            fmt = "{:.2f}" if col == "macro_f1" else "{:.1f}"
            out[col] = table[col].map(lambda v, f=fmt: "" if pd.isna(v) else f.format(v))
        elif col.endswith("_ms"):
            out[col] = table[col].map(lambda v: "" if pd.isna(v) else f"{v:.0f}")
        else:
            out[col] = table[col]
    return out.rename(columns={"variant_label": "variant"})


def _f1(value: float | None, low: float | None, high: float | None) -> str:
    if value is None or pd.isna(value):
        return ""
    return f"{value:.2f}" if low is None or pd.isna(low) else f"{value:.2f} [{low:.2f}–{high:.2f}]"


def _pct(value: float | None, low: float | None, high: float | None) -> str:
    if value is None or pd.isna(value):
        return ""
    return f"{value:.1%} [{low:.1%}–{high:.1%}]"


# ---- charts ----------------------------------------------------------------------------
def _long(table: pd.DataFrame, key: str) -> pd.DataFrame:
    """Proportions in long form with error-bar lengths, for grouped bar charts."""
    rows = []
    for _, r in table.iterrows():
        for m in PROPORTIONS:
            if m in r and pd.notna(r[m]):
                rows.append({key: r[key], "variant": r["variant_label"], "metric": METRIC_LABELS[m],
                             "value": r[m], "plus": r[f"{m}_high"] - r[m],
                             "minus": r[m] - r[f"{m}_low"], "n": r["n"]})
    return pd.DataFrame(rows, columns=[key, "variant", "metric", "value", "plus", "minus", "n"])


def _bars(long: pd.DataFrame, x: str, title: str) -> go.Figure:
    fig = px.bar(long, x=x, y="value", color="variant", barmode="group", facet_row="metric",
                 error_y="plus", error_y_minus="minus", hover_data=["n"], title=title,
                 range_y=[0, 1.05])
    fig.update_yaxes(tickformat=".0%", title=None)
    fig.for_each_annotation(lambda a: a.update(text=a.text.split("=")[-1]))
    return fig


def fig_by_language(df: pd.DataFrame) -> go.Figure:
    """Accuracy and resolution by language, one bar per variant, with 95% intervals."""
    return _bars(_long(summary_tables(df).by_lang, "lang"), "lang",
                 "Accuracy and resolution by language")


def fig_by_region(df: pd.DataFrame) -> go.Figure:
    table = summary_tables(df).by_region
    long = _long(table, "region") if not table.empty else _long(pd.DataFrame(
        columns=["region", "variant_label", "n"]), "region")
    return _bars(long[long["metric"] == METRIC_LABELS["resolution_rate"]], "region",
                 "Resolution by region")


def fig_latency(df: pd.DataFrame) -> go.Figure:
    table = summarize(df, ["variant_label"], ("p50_ms", "p95_ms", "p99_ms"))
    long = table.melt(id_vars=["variant_label"], value_vars=["p50_ms", "p95_ms", "p99_ms"],
                      var_name="percentile", value_name="ms")
    long["percentile"] = long["percentile"].str.replace("_ms", "").str.upper()
    fig = px.bar(long, x="percentile", y="ms", color="variant_label", barmode="group",
                 title="Latency per variant (from batch start)", labels={"variant_label": "variant"})
    fig.update_yaxes(title="ms")
    return fig


def fig_latency_cdf(df: pd.DataFrame) -> go.Figure:
    data = df[df["service_ms"].notna()]
    fig = px.ecdf(data, x="service_ms", color="variant_label", title="Latency distribution (CDF)",
                  labels={"variant_label": "variant", "service_ms": "latency from batch start (ms)"})
    fig.update_yaxes(title="share of items", tickformat=".0%")
    return fig


def figures(df: pd.DataFrame) -> dict[str, go.Figure]:
    """The four charts, keyed by the elem_id suffix the UI gives them."""
    return {"lang": fig_by_language(df), "region": fig_by_region(df),
            "latency": fig_latency(df), "cdf": fig_latency_cdf(df)}


# ---- comparing two runs ----------------------------------------------------------------
def compare_runs(a: pd.DataFrame, b: pd.DataFrame) -> pd.DataFrame:
    """Metrics of two runs side by side per variant name (a1@v1 in A vs a1@v2 in B); for
    proportions also the paired-bootstrap 95% interval of Δ on the items both runs answered,
    and whether Δ is more than noise."""
    cols = ("accuracy", "resolution_rate", "p50_ms", "p95_ms")
    sa, sb = summarize(a, ["variant"], cols), summarize(b, ["variant"], cols)
    merged = sa.merge(sb, on="variant", how="outer", suffixes=("_a", "_b"))
    out = pd.DataFrame({"variant": merged["variant"]})
    for col in cols:
        out[f"{col} A"], out[f"{col} B"] = merged[f"{col}_a"], merged[f"{col}_b"]
        out[f"{col} Δ"] = merged[f"{col}_b"] - merged[f"{col}_a"]
        if col in PROPORTIONS:
            diffs = [paired_difference(a[a["variant"] == v], b[b["variant"] == v], col)
                     for v in merged["variant"]]
            out[f"{col} Δ 95% CI"] = [_ci(d) for d in diffs]
            out[f"{col} Δ verdict"] = [d.verdict for d in diffs]
    return out


DIFF_METRICS = ("accuracy", "macro_f1", "resolution_rate")


def variant_differences(df: pd.DataFrame, baseline: str | None = None,
                        metrics: tuple[str, ...] = DIFF_METRICS) -> pd.DataFrame:
    """Within one run: every variant against ``baseline`` (default: the run's first variant,
    usually base) per suite, on the same items, with paired-bootstrap 95% intervals."""
    variants = list(dict.fromkeys(df["variant"]))
    baseline = baseline or (variants[0] if variants else None)
    labels = dict(zip(df["variant"], df["variant_label"]))
    rows = []
    for suite, group in df.groupby("suite", sort=True):
        base = group[group["variant"] == baseline]
        for v in variants:
            if v == baseline:
                continue
            other = group[group["variant"] == v]
            for metric in metrics:
                d = paired_difference(base, other, metric)
                if d.diff is None:
                    continue
                rows.append({"suite": suite, "variant": labels.get(v, v),
                             "vs": labels.get(baseline, baseline), "metric": metric,
                             "baseline": d.a, "value": d.b, "Δ": d.diff, "Δ 95% CI": _ci(d),
                             "verdict": d.verdict, "n": d.n})
    return pd.DataFrame(rows, columns=["suite", "variant", "vs", "metric", "baseline", "value",
                                       "Δ", "Δ 95% CI", "verdict", "n"])


def _ci(d: Difference) -> str:
    if d.low is None or pd.isna(d.low):
        return ""
    if d.metric == "macro_f1":
        return f"[{d.low:+.2f}, {d.high:+.2f}]"
    return f"[{d.low * 100:+.1f}, {d.high * 100:+.1f}] pts"


def changed_items(a: pd.DataFrame, b: pd.DataFrame) -> pd.DataFrame:
    """Items resolved in one run and not the other (same suite, item and variant name)."""
    keys = ["suite", "item_id", "variant"]
    cols = keys + ["lang", "resolved", "answer"]
    merged = a[cols].merge(b[cols], on=keys, suffixes=(" A", " B"))
    changed = merged[merged["resolved A"] != merged["resolved B"]]
    return changed.drop(columns=["lang B"]).rename(columns={"lang A": "lang"})


# ---- files -------------------------------------------------------------------------------
def export_csv(run_id: str, out: str | Path, store: EvalStore | None = None) -> Path:
    """Every item × variant of a run with its answer, scores and latencies, as CSV."""
    df = (store or EvalStore()).results_frame(run_id)
    return _write(out, lambda p: df.to_csv(p, index=False))


def write_html_report(run_id: str, other_run_id: str | None = None,
                      out: str | Path = "report.html", store: EvalStore | None = None) -> Path:
    """A self-contained HTML page (plotly.js inlined once): tables, charts, and the diff
    against ``other_run_id`` when given."""
    store = store or EvalStore()
    record, df = store.get_run(run_id), store.results_frame(run_id)
    if df.empty:
        raise StoreError(f"Run {run_id} has no answers yet; finish it with: "
                         f"workbench eval --resume {run_id}")
    parts = [_header(record), _tables_html(df)]
    for i, fig in enumerate(figures(df).values()):
        parts.append(fig.to_html(full_html=False, include_plotlyjs="inline" if i == 0 else False))
    if other_run_id:
        other, odf = store.get_run(other_run_id), store.results_frame(other_run_id)
        if odf.empty:
            raise StoreError(f"Run {other_run_id} has no answers to compare with.")
        parts.append(f"<h2>Compared with run {html.escape(other.run_id)}</h2>"
                     f"<p>A = {html.escape(run_id)}, B = {html.escape(other_run_id)}</p>")
        parts.append(compare_runs(df, odf).to_html(index=False, float_format=lambda v: f"{v:.3f}"))
        changes = changed_items(df, odf)
        parts.append(f"<h3>Items whose resolution changed ({len(changes)})</h3>")
        parts.append(changes.to_html(index=False))
    page = ("<!DOCTYPE html><html><head><meta charset='utf-8'>"
            f"<title>Eval run {html.escape(run_id)}</title><style>{_CSS}</style></head><body>"
            + "\n".join(parts) + "</body></html>")
    return _write(out, lambda p: p.write_text(page, encoding="utf-8"))


_CSS = ("body{font-family:system-ui,sans-serif;margin:2em;}table{border-collapse:collapse;"
        "margin:1em 0;}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left;}")


def _header(rec: RunRecord) -> str:
    suites = ", ".join(f"{s.name} ({s.n_items} items, {s.hash[:12]})" for s in rec.suites)
    created = time.strftime("%Y-%m-%d %H:%M", time.localtime(rec.created))
    rows = [("Run", rec.run_id), ("Created", created), ("Status", rec.status),
            ("Model", f"{rec.model} ({rec.model_id}, {rec.precision}, {rec.device})"),
            ("Variants", ", ".join(rec.adapters.get(v, v) for v in rec.variants)),
            ("Suites", suites), ("Items", f"{rec.total} item × variant pairs")]
    body = "".join(f"<tr><th>{k}</th><td>{html.escape(str(v))}</td></tr>" for k, v in rows)
    return f"<h1>Eval run {html.escape(rec.run_id)}</h1><table>{body}</table>"


def _tables_html(df: pd.DataFrame) -> str:
    t = summary_tables(df)
    out = []
    for title, table in (("By variant", t.overall), ("By suite", t.by_suite),
                         ("By language", t.by_lang), ("By region", t.by_region)):
        out.append(f"<h2>{title}</h2>" + display_table(table).to_html(index=False))
    diffs = variant_differences(df)
    if not diffs.empty:
        out.append("<h2>Variants against the first one (paired bootstrap, same items)</h2>"
                   + diffs.to_html(index=False, float_format=lambda v: f"{v:.3f}"))
    return "\n".join(out)


def _write(out: str | Path, write) -> Path:
    path = Path(out).expanduser()
    if path.is_dir():
        raise InputError(f"{path} is a folder; give a file name.")
    if not path.parent.is_dir():
        raise InputError(f"Folder {path.parent} does not exist.")
    write(path)
    return path
