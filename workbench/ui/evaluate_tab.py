"""The Evaluate tab: run suites × variants with a live progress bar, read tables and charts,
compare two runs and download CSV / HTML.

Runs go through the same engine that serves the Chat tab, as mixed batches, so chatting
stays possible while an eval runs (answers just share batches).
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import gradio as gr
import pandas as pd

from workbench.engine import BASE_ADAPTER
from workbench.errors import WorkbenchError
from workbench.eval.report import (compare_runs, display_table, export_csv, figures,
                                   summary_tables, write_html_report)
from workbench.eval.runner import run_eval
from workbench.eval.store import EvalStore
from workbench.eval.suite import list_suites, load_suite
from workbench.service import Workbench
from workbench.ui.common import guard
from workbench.eval.report import variant_differences
from workbench.ui.arena_panel import build_arena_leaderboard

CHARTS = ("lang", "region", "latency", "cdf")
DEFAULT_LIMIT = 10


def variant_choices(wb: Workbench) -> list[tuple[str, str]]:
    return [("base" if v == BASE_ADAPTER else wb.variant_label(v), v) for v in wb.variants]


def suite_choices() -> list[tuple[str, str]]:
    out = []
    for name in list_suites():
        try:
            out.append((f"{name} ({len(load_suite(name).items)} items)", name))
        except WorkbenchError:  # a broken suite is listed so running it shows the error
            out.append((f"{name} (invalid)", name))
    return out


def run_choices(store: EvalStore) -> list[tuple[str, str]]:
    return [(f"{r.run_id} · {r.status} · " + ",".join(r.adapters.get(v, v) for v in r.variants)
             + " · " + ",".join(s.name for s in r.suites), r.run_id) for r in store.list_runs(50)]


def run_view(store: EvalStore, run_id: str) -> tuple:
    """Overall table, per-language table and the four charts of one run."""
    df = store.results_frame(run_id)
    if df.empty:
        return (pd.DataFrame(), pd.DataFrame(), *[None] * len(CHARTS))
    tables = summary_tables(df)
    figs = figures(df)
    return (display_table(pd.concat([tables.overall.assign(suite="(all)"), tables.by_suite])
                          .reindex(columns=["suite", *tables.overall.columns])),
            display_table(tables.by_lang), *[figs[c] for c in CHARTS])


def _out_dir() -> Path:
    # Gradio serves returned files from its temp area; the system temp dir is always allowed.
    return Path(tempfile.mkdtemp(prefix="workbench-eval-"))


def _controls(wb: Workbench) -> dict:
    with gr.Row():
        suites = gr.CheckboxGroup(suite_choices(), label="Suites", elem_id="eval-suites")
        variants = gr.CheckboxGroup(variant_choices(wb), value=[BASE_ADAPTER], label="Variants",
                                    elem_id="eval-variants")
    with gr.Row():
        limit = gr.Number(DEFAULT_LIMIT, precision=0, minimum=0, label="Items per suite (0 = all)",
                          elem_id="eval-limit")
        run = gr.Button("Run evaluation", variant="primary", elem_id="eval-run")
    status = gr.Markdown("", elem_id="eval-status")
    return dict(suites=suites, variants=variants, limit=limit, run=run, status=status)


def _results() -> dict:
    table = gr.Dataframe(label="Results by variant and suite", interactive=False, elem_id="eval-table")
    lang_table = gr.Dataframe(label="By language", interactive=False, elem_id="eval-table-lang")
    with gr.Row():
        lang = gr.Plot(label="By language", elem_id="eval-chart-lang")
        region = gr.Plot(label="By region", elem_id="eval-chart-region")
    with gr.Row():
        latency = gr.Plot(label="Latency", elem_id="eval-chart-latency")
        cdf = gr.Plot(label="Latency CDF", elem_id="eval-chart-cdf")
    return dict(table=table, lang_table=lang_table, charts=[lang, region, latency, cdf])


def _compare(store: EvalStore) -> dict:
    with gr.Row():
        run_a = gr.Dropdown(run_choices(store), value=None, label="Run", elem_id="eval-run-a")
        run_b = gr.Dropdown(run_choices(store), value=None, label="Compare with", elem_id="eval-run-b")
    with gr.Row():
        compare = gr.Button("Compare", elem_id="eval-compare")
        csv_btn = gr.Button("Export CSV", elem_id="eval-export-csv")
        html_btn = gr.Button("HTML report", elem_id="eval-export-html")
    diff = gr.Dataframe(None, label="Run A vs run B (Δ with its paired 95% interval: is it more "
                        "than noise?)", interactive=False, elem_id="eval-diff")
    variant_diff = gr.Dataframe(None, label="Within each run: variants against its first "
                                "variant, same items (paired bootstrap, 95%)", interactive=False,
                                elem_id="eval-variant-diff")
    file = gr.File(label="Download", elem_id="eval-download")
    return dict(run_a=run_a, run_b=run_b, compare=compare, csv=csv_btn, html=html_btn,
                diff=diff, variant_diff=variant_diff, file=file)


def build_evaluate_tab(wb: Workbench, tab: gr.Tab) -> None:
    """Fill the Evaluate tab (called inside ``with gr.Tab("Evaluate") as tab``)."""
    store = EvalStore()
    c, r, k = _controls(wb), _results(), _compare(store)
    build_arena_leaderboard()
    view_outputs = [r["table"], r["lang_table"], *r["charts"]]

    def on_run(suites, variants, limit, progress=gr.Progress()):
        if not suites:
            raise gr.Error("Pick at least one suite.")
        n = int(limit or 0)
        try:
            result = run_eval(wb, suites, variants or [], limit=n if n > 0 else None, store=store,
                              progress=lambda done, total: progress((done, total), desc="Evaluating"))
            view = run_view(store, result.run_id)
        except WorkbenchError as exc:
            raise gr.Error(exc.message) from exc
        note = f"Run **{result.run_id}**: {result.done}/{result.total} answers, {result.status}."
        choices = run_choices(store)
        return (note, *view, gr.update(choices=choices, value=result.run_id),
                gr.update(choices=choices))

    c["run"].click(on_run, [c["suites"], c["variants"], c["limit"]],
                   [c["status"], *view_outputs, k["run_a"], k["run_b"]],
                   concurrency_limit=1, concurrency_id="eval-run")
    k["run_a"].change(lambda rid: guard(run_view)(store, rid) if rid else
                      (pd.DataFrame(), pd.DataFrame(), *[None] * len(CHARTS)), k["run_a"], view_outputs)
    k["compare"].click(lambda a, b: _compare_runs(store, a, b), [k["run_a"], k["run_b"]],
                       [k["diff"], k["variant_diff"], k["file"]])
    k["csv"].click(lambda a: guard(_csv)(store, a), k["run_a"], k["file"])
    k["html"].click(lambda a, b: guard(_html)(store, a, b), [k["run_a"], k["run_b"]], k["file"])
    tab.select(lambda picked: _refresh(wb, store, picked), c["variants"],
               [c["variants"], c["suites"], k["run_a"], k["run_b"]])


def _need(run_id: str | None) -> str:
    if not run_id:
        raise gr.Error("Pick a run first.")
    return run_id


def _csv(store: EvalStore, run_id: str | None) -> str:
    rid = _need(run_id)
    return str(export_csv(rid, _out_dir() / f"eval-{rid}.csv", store))


def _html(store: EvalStore, run_id: str | None, other: str | None) -> str:
    rid = _need(run_id)
    name = f"eval-{rid}" + (f"-vs-{other}" if other else "") + ".html"
    return str(write_html_report(rid, other or None, _out_dir() / name, store))


def _compare_runs(store: EvalStore, run_a: str | None, run_b: str | None) -> tuple:
    if not run_a or not run_b:
        raise gr.Error("Pick two runs to compare.")
    report = guard(_html)(store, run_a, run_b)  # first: it refuses runs without answers
    frames = {run_a: store.results_frame(run_a), run_b: store.results_frame(run_b)}
    diff = compare_runs(frames[run_a], frames[run_b])
    within = pd.concat([variant_differences(df).assign(run=rid) for rid, df in frames.items()])
    return diff.round(4), within.round(4), report


def _refresh(wb: Workbench, store: EvalStore, picked: list[str] | None) -> tuple:
    """New adapters, suites and runs appear when the tab is opened again; picks of
    variants that were unloaded meanwhile are dropped."""
    choices = variant_choices(wb)
    runs = run_choices(store)
    keep = [v for v in picked or [] if v in wb.variants]
    return (gr.update(choices=choices, value=keep), gr.update(choices=suite_choices()),
            gr.update(choices=runs), gr.update(choices=runs))
