"""Eval commands: eval, runs, report, export."""
from __future__ import annotations

import json
import time
from pathlib import Path

import click

from workbench.cli.backend_opts import backend_choice, backend_options
from workbench.cli.precheck import (BASE_NAMES, DEFAULT_MODEL, adapter_refs, before_loading,
                                    check_refs)
from workbench.errors import WorkbenchError
from workbench.console.progress import Progress


def _split(values: str) -> list[str]:
    return [v.strip() for v in values.split(",") if v.strip()]


class _Progress:
    """``progress(done, total)`` for run_eval, on stderr: a bar on a terminal; in a log (CI,
    nohup) a line every 5% (see workbench.console.progress)."""

    def __init__(self, desc: str = "Evaluating") -> None:
        self.bar: Progress | None = None
        self.desc = desc

    def __call__(self, done: int, total: int) -> None:
        if self.bar is None:
            self.bar = Progress(total, self.desc, every_pct=5, every_s=60)
        self.bar.update_to(done)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _announce(run, started: dict) -> None:
    started["id"] = run.run_id
    click.echo(f"Run {run.run_id}: {run.total} generations "
               f"(if interrupted: workbench eval --resume {run.run_id})", err=True)


@click.command("eval")
@click.option("--suite", "suites", multiple=True, metavar="NAME|PATH",
              help="Suite name under workbench/data/eval_sets/ or a suite folder; repeat for several "
              "[default: every suite under workbench/data/eval_sets/].")
@click.option("--variants", default="base", show_default=True,
              help="Comma-separated variants: 'base' and adapter names or name@version refs.")
@click.option("--limit", type=click.IntRange(min=1), default=None,
              help="Items per suite (spread over languages).")
@click.option("--model", default=None, help=f"Model preset, hub id or folder [default: {DEFAULT_MODEL}, "
              "or the run's model with --resume].")
@click.option("--resume", "resume", default=None, metavar="RUN_ID",
              help="Finish an interrupted run: only its missing items are generated.")
@click.option("--json", "as_json", is_flag=True, help="End with one JSON line of the results.")
@click.option("--split", "split", type=click.Choice(["dev", "test", "both"]), default="both",
              show_default=True, help="For suites with splits: the dev items (tuned on), the "
              "test items (written apart, never tuned or trained near), or both side by side.")
@click.option("--decoding", type=click.Choice(["free", "constrained", "both"]), default="free",
              show_default=True, help="For suites with a structured_output grammar: decode "
              "freely, under the grammar (reported as SUITE:constrained), or both.")
@backend_options
def eval_cmd(suites: tuple[str, ...], variants: str, limit: int | None, model: str | None,
             resume: str | None, as_json: bool, split: str, decoding: str, backend: str,
             base_url: str | None, api_key: str | None) -> None:
    """Evaluate variants on suites: accuracy, resolution rate and latency, stored as a run.

    Example: workbench eval --suite multilingual-intents --suite regional-policy --variants base,cs-support --limit 20 --json

    Example: workbench eval --suite regional-policy --split test --variants base,cs-support --json

    Example: workbench eval --resume 20250101-120000-ab12cd
    """
    choice = backend_choice(backend, base_url, api_key)
    loaded, store, model, refs = _checked(suites, variants, resume, model, choice.remote,
                                          None if split == "both" else split)
    before_loading()
    from workbench.config import engine_preset
    from workbench.eval.runner import run_eval

    wb = choice.start(model or DEFAULT_MODEL, refs, engine_preset("throughput"))
    bar, choices, started = _Progress(), _Progress("Scoring choices"), {}
    try:
        result = run_eval(wb, loaded, _split(variants), limit=limit, progress=bar,
                          run_id=resume, store=store, on_start=lambda r: _announce(r, started),
                          decoding=decoding, choice_progress=choices)
    except KeyboardInterrupt:
        run_id = started.get("id")
        raise WorkbenchError(f"Interrupted. Resume with: workbench eval --resume {run_id}"
                             if run_id else "Interrupted before the run started.") from None
    finally:
        choices.close()
        bar.close()
        wb.close()
    _print_summary(store, result.run_id)
    if result.status == "finished" and limit is None and not resume and not choice.remote:
        from workbench.eval.cards import record_cards

        for ref in record_cards(wb.registry, store, result.run_id):
            click.echo(f"Recorded the eval summary on {ref}'s card.", err=True)
    if as_json:
        from workbench.eval.splits import split_summary

        click.echo(json.dumps({"run_id": result.run_id,
                               "variants": {"base" if v in BASE_NAMES else v: s.as_json()
                                            for v, s in result.summary.items()},
                               "splits": _rounded(split_summary(store.results_frame(result.run_id)))}))
    if result.status != "finished":
        raise WorkbenchError(store.get_run(result.run_id).error or f"Run {result.run_id} failed.")


def _rounded(value: object) -> object:
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    return round(value, 4) if isinstance(value, float) else value


def _checked(suites: tuple[str, ...], variants: str, resume: str | None, model: str | None,
             remote: bool, split: str | None = None) -> tuple[list, object, str | None, list[str]]:
    """The suites, the store, the model and the adapter refs of a run, checked with files only
    (options, adapter names, suite folders, the resumed run) so a mistake needs no model load."""
    if resume and suites:
        raise click.UsageError("--resume reuses the run's suites and variants; drop --suite.")
    refs = adapter_refs(_split(variants))
    if not resume:
        check_refs(refs, remote)  # cheapest first: reading the suites imports scipy
    from workbench.eval.store import EvalStore
    from workbench.eval.suite import list_suites, load_splits

    if not resume and not suites:
        suites = tuple(list_suites())  # every shipped suite
        if not suites:
            raise click.UsageError("No suites under workbench/data/eval_sets/; give --suite NAME|PATH.")
    loaded = [s for name in suites for s in load_splits(name, split)]
    store = EvalStore()
    if resume:
        record = store.get_run(resume)
        model = model or record.model
        refs = [ref for v, ref in record.adapters.items() if v not in BASE_NAMES]
        check_refs(refs, remote)
    return loaded, store, model, refs


def _print_summary(store, run_id: str) -> None:
    from workbench.eval.report import display_table, summary_tables, variant_differences

    frame = store.results_frame(run_id)
    tables = summary_tables(frame)
    click.secho(f"Run {run_id}", bold=True)
    for title, table in (("By variant", tables.overall), ("By suite", tables.by_suite),
                         ("By language", tables.by_lang), ("By region", tables.by_region)):
        if table.empty:
            continue
        click.secho(f"\n{title}", bold=True)
        click.echo(display_table(table).to_string(index=False))
    from workbench.eval.splits import split_table

    splits = split_table(frame)
    if not splits.empty:
        click.secho("\nDev and test splits (95% intervals; gap = dev - test, the generalization gap)",
                    bold=True)
        click.echo(splits.to_string(index=False))
    diffs = variant_differences(frame)
    if not diffs.empty:
        click.secho("\nAgainst the first variant, same items (paired bootstrap, 95%)", bold=True)
        click.echo(diffs.drop(columns=["baseline", "value"]).to_string(
            index=False, float_format=lambda v: f"{v:+.3f}"))
    click.echo()


@click.command("runs")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(min=1),
              help="How many recent runs to list.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per run.")
def runs_cmd(limit: int, as_json: bool) -> None:
    """List recent eval runs, newest first.

    Example: workbench runs --limit 5
    """
    from workbench.eval.store import EvalStore

    store = EvalStore()
    runs = store.list_runs(limit)
    if not runs:
        click.echo("No eval runs yet. Start one with: workbench eval --suite multilingual-intents")
    for r in runs:
        done = store.progress(r.run_id)
        variants = ",".join(r.adapters.get(v, v) for v in r.variants)
        suites = ",".join(s.name for s in r.suites)
        if as_json:
            click.echo(json.dumps({"run_id": r.run_id, "created": r.created, "status": r.status,
                                   "model": r.model, "variants": variants, "suites": suites,
                                   "done": done, "total": r.total}))
        else:
            created = time.strftime("%Y-%m-%d %H:%M", time.localtime(r.created))
            click.echo(f"{r.run_id}  {created}  {r.status:<11} {done}/{r.total}  {r.model}  "
                       f"[{variants}]  {suites}")


@click.command("report")
@click.argument("run_id")
@click.argument("other_run_id", required=False)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="HTML file to write [default: eval-RUN_ID.html].")
def report_cmd(run_id: str, other_run_id: str | None, out: Path | None) -> None:
    """Write a self-contained HTML report of a run, compared with a second run if given.

    Example: workbench report 20250101-120000-ab12cd 20250102-090000-ef34gh --out compare.html
    """
    from workbench.eval.report import write_html_report

    path = write_html_report(run_id, other_run_id, out or Path(f"eval-{run_id}.html"))
    click.echo(f"Wrote {path}")


@click.command("export")
@click.argument("run_id")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="CSV file to write [default: eval-RUN_ID.csv].")
def export_cmd(run_id: str, out: Path | None) -> None:
    """Export every answer of a run (scores, latencies) as CSV.

    Example: workbench export 20250101-120000-ab12cd --out run.csv
    """
    from workbench.eval.report import export_csv

    path = export_csv(run_id, out or Path(f"eval-{run_id}.csv"))
    click.echo(f"Wrote {path}")


COMMANDS = [eval_cmd, runs_cmd, report_cmd, export_cmd]
