"""Summary tables, comparisons, a self-contained HTML report and a CSV export of a run
(the charts are in ``charts``, the summary levels and column names in ``summary``).

Everything starts from ``EvalStore.results_frame`` (one row per item × variant), so the CLI,
the Evaluate tab and the HTML report show the same numbers.
"""
from __future__ import annotations

import html
import time
from pathlib import Path

import pandas as pd

from workbench.engine import BASE_ADAPTER, BASE_LABEL
from workbench.errors import InputError, StoreError
from workbench.eval.intervals import Difference, paired_difference
from workbench.eval.metrics import LATENCY_METRICS, summarize
from workbench.eval.splits import split_table
from workbench.eval.store import EvalStore, RunRecord
from workbench.eval.charts import figures
from workbench.eval.summary import (COLUMN_TITLES, KEY_COLUMNS, PROPORTIONS, SCORE_METRICS,
                                    summary_tables)
from workbench.console.textfmt import human_duration

__all__ = ["summary_tables", "display_table", "scores_table", "latency_table", "compare_runs",
           "variant_differences", "export_csv", "write_html_report"]


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


def scores_table(table: pd.DataFrame) -> pd.DataFrame:
    """For people: titled columns, shares as "71.0% [60–80]" (95% interval); a metric
    that is empty in every row is left out."""
    return _readable(table, SCORE_METRICS, _score_text)


def latency_table(table: pd.DataFrame) -> pd.DataFrame:
    """For people: latency percentiles as "1.2 s" / "2 min 36 s", tokens/s to one decimal."""
    return _readable(table, LATENCY_METRICS, lambda row, m: f"{row[m]:.1f}" if m == "tokens_per_s"
                     else human_duration(row[m]))


def _readable(table: pd.DataFrame, metrics: tuple[str, ...], text) -> pd.DataFrame:
    keys = [c for c in KEY_COLUMNS if c in table]
    shown = [m for m in metrics if m in table and table[m].notna().any()]
    out = table[keys].reset_index(drop=True)
    for m in shown:
        out[m] = ["–" if pd.isna(row[m]) else text(row, m) for _, row in table.iterrows()]
    return out.rename(columns=COLUMN_TITLES)


def _score_text(row: pd.Series, metric: str) -> str:
    low, high = row.get(f"{metric}_low"), row.get(f"{metric}_high")
    if metric == "macro_f1":
        return _f1(row[metric], low, high)
    if low is None or pd.isna(low):
        return f"{row[metric]:.1%}"
    return f"{row[metric]:.1%} [{low * 100:.0f}–{high * 100:.0f}]"  # whole points: narrow


def readable_comparison(diff: pd.DataFrame) -> pd.DataFrame:
    """``compare_runs`` output for people, one row per variant × metric (narrow enough to
    read): shares in %, Δ in points, latencies as durations."""
    rows = []
    for _, r in diff.iterrows():
        for metric in dict.fromkeys(c.partition(" ")[0] for c in diff.columns if " " in c):
            rows.append({"Variant": r["variant"], "Metric": COLUMN_TITLES.get(metric, metric),
                         **{title: _diff_text(r[f"{metric} {side}"], metric, side)
                            for title, side in (("Run A", "A"), ("Run B", "B"), ("Δ", "Δ"))},
                         "Δ 95% CI": r.get(f"{metric} Δ 95% CI", ""),
                         "Verdict": r.get(f"{metric} Δ verdict", "")})
    return pd.DataFrame(rows, columns=["Variant", "Metric", "Run A", "Run B", "Δ", "Δ 95% CI",
                                       "Verdict"])


def readable_differences(diffs: pd.DataFrame) -> pd.DataFrame:
    """``variant_differences`` output for people: titled columns and metrics, shares in %,
    Δ in points."""
    out = diffs.copy()
    for col, side in (("baseline", "A"), ("value", "B"), ("Δ", "Δ")):
        out[col] = [_diff_text(v, m, side) for v, m in zip(diffs[col], diffs["metric"])]
    out["metric"] = diffs["metric"].map(lambda m: COLUMN_TITLES.get(m, m))
    return out.rename(columns=_DIFF_TITLES)


_DIFF_TITLES = {"suite": "Suite", "variant": "Variant", "vs": "Against", "metric": "Metric",
                "baseline": "Baseline", "value": "Value", "verdict": "Verdict", "n": "Items",
                "run": "Run"}


def _diff_text(value: object, metric: str, side: str) -> object:
    if value is None or pd.isna(value):
        return "–"
    if metric.endswith("_ms"):
        sign = ("+" if value >= 0 else "−") if side == "Δ" else ""
        return sign + human_duration(abs(value))
    if metric == "macro_f1":
        return f"{value:+.2f}" if side == "Δ" else f"{value:.2f}"
    if metric in PROPORTIONS:
        return f"{value * 100:+.1f} pts" if side == "Δ" else f"{value:.1%}"
    return value


def _f1(value: float | None, low: float | None, high: float | None) -> str:
    if value is None or pd.isna(value):
        return ""
    return f"{value:.2f}" if low is None or pd.isna(low) else f"{value:.2f} [{low:.2f}–{high:.2f}]"


def _pct(value: float | None, low: float | None, high: float | None) -> str:
    if value is None or pd.isna(value):
        return ""
    return f"{value:.1%} [{low:.1%}–{high:.1%}]"


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
    # Matched on the engine's names; shown with the one name users know for the base.
    out["variant"] = out["variant"].replace(BASE_ADAPTER, BASE_LABEL)
    return out


# acc, acc_norm and format_compliance only where the suite has them (no row otherwise).
DIFF_METRICS = ("accuracy", "macro_f1", "resolution_rate", "acc", "acc_norm", "format_compliance")


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
    charts = [fig for fig in figures(df).values() if fig is not None]
    for i, fig in enumerate(charts):
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
        if table.empty:
            continue
        out.append(f"<h2>{title}</h2>" + display_table(table).to_html(index=False))
    splits = split_table(df)
    if not splits.empty:
        out.append("<h2>Dev and test splits (95% intervals; gap = dev − test, the generalization "
                   "gap)</h2>" + splits.to_html(index=False))
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
