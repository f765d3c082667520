"""The Evaluate tab: run suites × variants with a live progress bar, read tables and charts,
compare two runs and download CSV / HTML.

Suites with dev and test splits run one or both (both by default), and a run with both shows
them side by side with their intervals and the generalization gap (dev minus test).

Runs go through the same engine that serves the Chat tab, as mixed batches, so chatting
stays possible while an eval runs (answers just share batches).
"""
from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

import gradio as gr
import pandas as pd

from workbench.engine import BASE_ADAPTER
from workbench.errors import WorkbenchError
from workbench.eval.cards import record_cards
from workbench.eval.charts import figures
from workbench.eval.report import (compare_runs, export_csv, latency_table,
                                   readable_comparison, readable_differences, scores_table,
                                   summary_tables, variant_differences, write_html_report)
from workbench.eval.runner import RunResult, run_eval
from workbench.eval.splits import split_table
from workbench.eval.store import EvalStore
from workbench.eval.suite import list_suites, load_splits
from workbench.service.workbench import Workbench
from workbench.ui.arena_panel import build_arena_leaderboard
from workbench.ui.common import guard, refuse

CHARTS = ("lang", "region", "latency", "cdf")
TABLES = ("scores", "splits", "latency", "lang")
SPLITS = ("both", "test", "dev")
DEFAULT_LIMIT = 10
# Exports live in their own folders under one parent; older ones are removed on each export.
EXPORT_ROOT = Path(tempfile.gettempdir()) / "workbench-eval-exports"
KEEP_EXPORTS = 5


def variant_choices(wb: Workbench) -> list[tuple[str, str]]:
    return [(wb.variant_label(v), v) for v in wb.variants]


def suite_choices() -> list[tuple[str, str]]:
    out = []
    for name in list_suites():
        try:
            sizes = " + ".join(f"{len(s.items)} {s.split}".strip() for s in load_splits(name))
            out.append((f"{name} ({sizes} items)", name))
        except WorkbenchError:  # a broken suite is listed so running it shows the error
            out.append((f"{name} (invalid)", name))
    return out


def run_choices(store: EvalStore) -> list[tuple[str, str]]:
    return [(f"{r.run_id} · {r.status} · " + ",".join(r.adapters.get(v, v) for v in r.variants)
             + " · " + ",".join(s.name for s in r.suites), r.run_id) for r in store.list_runs(50)]


def _shown(value: object) -> dict:
    """An update that shows ``value``, or hides the component when there is nothing to show."""
    if isinstance(value, pd.DataFrame):
        if value.empty:
            return gr.update(value=None, visible=False)
        return gr.update(value=value, visible=True, column_widths=_widths(value))
    return gr.update(value=value, visible=value is not None)


def _widths(table: pd.DataFrame) -> list[str]:
    """Column widths from their longest cell or title (cells are monospace): short
    columns such as "Items" keep room for their title instead of breaking it letter by
    letter, and a phone scrolls the table sideways instead of squeezing every column."""
    # Titles up to 14 characters stay on one line; longer ones break between words.
    chars = [max([min(len(str(c)), 14)] + [len(w) for w in str(c).split()]
                 + [len(str(v)) for v in table[c]]) for c in table.columns]
    return [f"{round(8.6 * c) + 24}px" for c in chars]


def run_view(store: EvalStore, run_id: str | None) -> tuple:
    """Updates for the results box, its three tables and four charts; hidden where empty."""
    df = store.results_frame(run_id) if run_id else pd.DataFrame()
    if df.empty:
        return (gr.update(visible=False), *[_shown(None) for _ in (*TABLES, *CHARTS)])
    tables = summary_tables(df)
    by_suite = pd.concat([tables.overall.assign(suite="All suites"), tables.by_suite],
                         ignore_index=True)
    figs = figures(df)
    return (gr.update(visible=True), _shown(scores_table(by_suite)), _shown(_split_view(df)),
            _shown(latency_table(by_suite)), _shown(_lang_table(tables.by_lang)),
            *[_shown(figs[c]) for c in CHARTS])


def _split_view(df: pd.DataFrame) -> pd.DataFrame:
    return split_table(df).rename(columns={"suite": "Suite", "variant": "Variant", "metric": "Metric",
                                           "dev": "Dev", "test": "Test",
                                           "gap": "Generalization gap"})


def _lang_table(by_lang: pd.DataFrame) -> pd.DataFrame:
    scores, latency = scores_table(by_lang), latency_table(by_lang)
    return scores.join(latency.drop(columns=[c for c in latency if c in scores]))


def _out_dir() -> Path:
    """A fresh folder for one export. Gradio copies a returned file into its own cache as
    soon as the handler returns, so only the newest few folders (room for concurrent
    exports) are kept and older ones are removed here."""
    EXPORT_ROOT.mkdir(parents=True, exist_ok=True)
    # Names start with the creation time, so sorting them sorts by age.
    old = sorted(EXPORT_ROOT.glob("export-*"), reverse=True)
    for folder in old[KEEP_EXPORTS - 1:]:
        shutil.rmtree(folder, ignore_errors=True)
    return Path(tempfile.mkdtemp(prefix=f"export-{time.time_ns():020d}-", dir=EXPORT_ROOT))


def _controls(wb: Workbench) -> dict:
    with gr.Row():
        suites = gr.CheckboxGroup(suite_choices(), label="Suites", elem_id="eval-suites")
        variants = gr.CheckboxGroup(variant_choices(wb), value=[BASE_ADAPTER], label="Variants",
                                    elem_id="eval-variants")
    with gr.Row():
        limit = gr.Number(DEFAULT_LIMIT, precision=0, minimum=0, label="Items per suite (0 = all)",
                          elem_id="eval-limit")
        split = gr.Radio(list(SPLITS), value="both", label="Split (dev: tuned on; test: written apart)",
                         elem_id="eval-split")
        run = gr.Button("Run evaluation", variant="primary", elem_id="eval-run")
    # The run's one progress bar shows here (min_height gives it room before any text).
    status = gr.Markdown("", elem_id="eval-status", min_height=40)
    return dict(suites=suites, variants=variants, limit=limit, split=split, run=run, status=status)


def _table(label: str, elem_id: str) -> gr.Dataframe:
    return gr.Dataframe(label=label, interactive=False, wrap=True, visible=False, elem_id=elem_id)


def _results() -> dict:
    # One box around everything a run shows: before a run it takes no room at all.
    with gr.Column(visible=False, elem_id="eval-results") as box:
        return dict(box=box, **_result_parts())


def _result_parts() -> dict:
    tables = [_table("Scores by variant and suite (95% intervals)", "eval-table"),
              _table("Dev and test splits side by side (95% intervals; generalization gap = "
                     "dev − test)", "eval-table-splits"),
              _table("Latency by variant and suite (service time after queueing)",
                     "eval-table-latency"),
              _table("By language", "eval-table-lang")]
    with gr.Row():
        lang = gr.Plot(label="By language", visible=False, elem_id="eval-chart-lang")
        region = gr.Plot(label="By region", visible=False, elem_id="eval-chart-region")
    with gr.Row():
        latency = gr.Plot(label="Latency", visible=False, elem_id="eval-chart-latency")
        cdf = gr.Plot(label="Latency CDF", visible=False, elem_id="eval-chart-cdf")
    return dict(tables=tables, charts=[lang, region, latency, cdf])


def _compare(store: EvalStore) -> dict:
    with gr.Row():
        run_a = gr.Dropdown(run_choices(store), value=None, label="Run", elem_id="eval-run-a")
        run_b = gr.Dropdown(run_choices(store), value=None, label="Compare with", elem_id="eval-run-b")
    with gr.Row():
        compare = gr.Button("Compare", elem_id="eval-compare")
        csv_btn = gr.Button("Export CSV", elem_id="eval-export-csv")
        html_btn = gr.Button("HTML report", elem_id="eval-export-html")
    diff = _table("Run A vs run B (Δ with its paired 95% interval: is it more than noise?)",
                  "eval-diff")
    variant_diff = _table("Within each run: variants against its first variant, same items "
                          "(paired bootstrap, 95%)", "eval-variant-diff")
    file = gr.File(label="Download", visible=False, elem_id="eval-download")
    return dict(run_a=run_a, run_b=run_b, compare=compare, csv=csv_btn, html=html_btn,
                diff=diff, variant_diff=variant_diff, file=file)


def build_evaluate_tab(wb: Workbench, tab: gr.Tab) -> None:
    """Fill the Evaluate tab (called inside ``with gr.Tab("Evaluate") as tab``)."""
    store = EvalStore()
    c, r, k = _controls(wb), _results(), _compare(store)
    build_arena_leaderboard()
    view_outputs = [r["box"], *r["tables"], *r["charts"]]

    @guard
    def on_run(suites, variants, limit, split, progress=gr.Progress()):
        if not suites:
            refuse("Pick at least one suite.")
        n = int(limit or 0)
        which = None if split in (None, "both") else split
        loaded = [s for name in suites for s in load_splits(name, which)]
        result = run_eval(wb, loaded, variants or [], limit=n if n > 0 else None, store=store,
                          progress=lambda done, total: progress((done, total), desc="Evaluating"),
                          choice_progress=lambda done, total: progress(
                              (done, total), desc="Scoring choices by log-likelihood"))
        note = _run_note(result, n, _record_cards(wb, store, result) if n <= 0 else [])
        choices = run_choices(store)
        return (note, *run_view(store, result.run_id),
                gr.update(choices=choices, value=result.run_id), gr.update(choices=choices))

    # The progress bar shows once, on the status line, not over every table and chart.
    c["run"].click(on_run, [c["suites"], c["variants"], c["limit"], c["split"]],
                   [c["status"], *view_outputs, k["run_a"], k["run_b"]],
                   show_progress_on=c["status"], concurrency_limit=1, concurrency_id="eval-run")
    # .input, not .change: a run sets this dropdown itself and already returns its view.
    k["run_a"].input(lambda rid: guard(run_view)(store, rid), k["run_a"], view_outputs,
                     show_progress="minimal")
    k["compare"].click(lambda a, b: guard(_compare_runs)(store, a, b), [k["run_a"], k["run_b"]],
                       [k["diff"], k["variant_diff"], k["file"]])
    k["csv"].click(lambda a: guard(_csv)(store, a), k["run_a"], k["file"])
    k["html"].click(lambda a, b: guard(_html)(store, a, b), [k["run_a"], k["run_b"]], k["file"])
    tab.select(lambda picked: _refresh(wb, store, picked), c["variants"],
               [c["variants"], c["suites"], k["run_a"], k["run_b"]])


def _run_note(result: RunResult, limit: int, cards: list[str] | str) -> str:
    note = f"Run **{result.run_id}**: {result.done}/{result.total} answers, {result.status}."
    if isinstance(cards, str):  # the cards could not be written; the run itself is stored
        return note + f" Adapter cards not updated: {cards}"
    if cards:
        return note + " Eval summary recorded on the card of " + ", ".join(cards) + "."
    if limit > 0:
        return note + " A sample of each suite: adapter cards are left as they were."
    return note


def _record_cards(wb: Workbench, store: EvalStore, result: RunResult) -> list[str] | str:
    """After a finished full run, each adapter version's per-suite numbers go on its card,
    as ``workbench eval`` does (``workbench.eval.cards``). Returns the refs updated, or the reason none could be."""
    if result.status != "finished":
        return []
    try:
        return record_cards(wb.registry, store, result.run_id)
    except WorkbenchError as exc:
        return exc.message


def _need(run_id: str | None) -> str:
    if not run_id:
        refuse("Pick a run first.")
    return run_id


def _csv(store: EvalStore, run_id: str | None) -> dict:
    rid = _need(run_id)
    return _shown(str(export_csv(rid, _out_dir() / f"eval-{rid}.csv", store)))


def _html_file(store: EvalStore, run_id: str | None, other: str | None) -> str:
    rid = _need(run_id)
    name = f"eval-{rid}" + (f"-vs-{other}" if other else "") + ".html"
    return str(write_html_report(rid, other or None, _out_dir() / name, store))


def _html(store: EvalStore, run_id: str | None, other: str | None) -> dict:
    return _shown(_html_file(store, run_id, other))


def _compare_runs(store: EvalStore, run_a: str | None, run_b: str | None) -> tuple:
    if not run_a or not run_b:
        refuse("Pick two runs to compare.")
    report = _html_file(store, run_a, run_b)  # first: it refuses runs without answers
    frames = {run_a: store.results_frame(run_a), run_b: store.results_frame(run_b)}
    diff = compare_runs(frames[run_a], frames[run_b])
    within = pd.concat([variant_differences(df).assign(run=rid) for rid, df in frames.items()])
    within = within[["run", *within.columns.drop("run")]]
    return (_shown(readable_comparison(diff)), _shown(readable_differences(within)),
            _shown(report))


def _refresh(wb: Workbench, store: EvalStore, picked: list[str] | None) -> tuple:
    """New adapters, suites and runs appear when the tab is opened again; picks of
    variants that were unloaded meanwhile are dropped."""
    choices = variant_choices(wb)
    runs = run_choices(store)
    keep = [v for v in picked or [] if v in wb.variants]
    return (gr.update(choices=choices, value=keep), gr.update(choices=suite_choices()),
            gr.update(choices=runs), gr.update(choices=runs))
