"""Eval commands: eval, runs, report, export."""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click

from workbench.cli.backend_opts import backend_choice, backend_options
from workbench.errors import WorkbenchError


def _split(values: str) -> list[str]:
    return [v.strip() for v in values.split(",") if v.strip()]


class _Progress:
    """Progress on stderr: a click bar on a terminal; in a log (CI, nohup) a line every 5%."""

    def __init__(self) -> None:
        self.bar = None
        self.tty = sys.stderr.isatty()
        self.started = time.monotonic()
        self.logged = -1

    def __call__(self, done: int, total: int) -> None:
        if not self.tty:
            self._log(done, total)
        elif self.bar is None:
            self.bar = click.progressbar(length=total, label="Evaluating", file=sys.stderr,
                                         show_pos=True, show_eta=True)
            self.bar.__enter__()
        if self.bar is not None:
            self.bar.update(done - self.bar.pos)

    def _log(self, done: int, total: int) -> None:
        step = max(total // 20, 1)
        if done // step == self.logged and done < total:
            return
        self.logged = done // step
        elapsed = int(time.monotonic() - self.started)
        click.echo(f"Evaluating: {done}/{total} ({done / max(total, 1):.0%}), "
                   f"{elapsed // 60}:{elapsed % 60:02d} elapsed", err=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None


def _announce(run, started: dict) -> None:
    started["id"] = run.run_id
    click.echo(f"Run {run.run_id}: {run.total} generations "
               f"(if interrupted: workbench eval --resume {run.run_id})", err=True)


@click.command("eval")
@click.option("--suite", "suites", multiple=True, metavar="NAME|PATH",
              help="Suite name under eval_sets/ or a suite folder; repeat for several.")
@click.option("--variants", default="base", show_default=True,
              help="Comma-separated variants: 'base' and adapter names or name@version refs.")
@click.option("--limit", type=int, default=None, help="Items per suite (spread over languages).")
@click.option("--model", default=None, help="Model preset, hub id or folder [default: smollm2-135m, "
              "or the run's model with --resume].")
@click.option("--resume", "resume", default=None, metavar="RUN_ID",
              help="Finish an interrupted run: only its missing items are generated.")
@click.option("--json", "as_json", is_flag=True, help="End with one JSON line of the results.")
@click.option("--decoding", type=click.Choice(["free", "constrained", "both"]), default="free",
              show_default=True, help="For suites with a structured_output grammar: decode "
              "freely, under the grammar (reported as SUITE:constrained), or both.")
@backend_options
def eval_cmd(suites: tuple[str, ...], variants: str, limit: int | None, model: str | None,
             resume: str | None, as_json: bool, decoding: str, backend: str,
             base_url: str | None, api_key: str | None) -> None:
    """Evaluate variants on suites: accuracy, resolution rate and latency, stored as a run.

    Example: workbench eval --suite multilingual-intents --suite regional-policy --variants base,cs-support --limit 20 --json
    """
    from workbench.config import engine_preset
    from workbench.eval.runner import run_eval
    from workbench.eval.store import EvalStore
    from workbench.eval.suite import load_suite
    from workbench.models.catalog import DEFAULT_MODEL

    store = EvalStore()
    loaded = [load_suite(s) for s in suites]  # bad suites fail before the model loads
    if resume:
        if suites:
            raise click.UsageError("--resume reuses the run's suites and variants; drop --suite.")
        record = store.get_run(resume)
        model = model or record.model
        refs = [ref for v, ref in record.adapters.items() if v != "__base__"]
    else:
        if not suites:
            raise click.UsageError("Give at least one --suite (or --resume RUN_ID).")
        refs = [v for v in _split(variants) if v not in ("base", "__base__")]
    choice = backend_choice(backend, base_url, api_key)
    wb = choice.start(model or DEFAULT_MODEL, refs, engine_preset("throughput"))
    bar, started = _Progress(), {}
    try:
        result = run_eval(wb, loaded, _split(variants), limit=limit, progress=bar,
                          run_id=resume, store=store, on_start=lambda r: _announce(r, started),
                          decoding=decoding)
    except KeyboardInterrupt:
        run_id = started.get("id")
        raise WorkbenchError(f"Interrupted. Resume with: workbench eval --resume {run_id}"
                             if run_id else "Interrupted before the run started.") from None
    finally:
        bar.close()
        wb.close()
    _print_summary(store, result.run_id)
    if result.status == "finished" and limit is None and not resume and not choice.remote:
        for ref in record_cards(wb.registry, store, result.run_id):
            click.echo(f"Recorded the eval summary on {ref}'s card.", err=True)
    if as_json:
        click.echo(json.dumps({"run_id": result.run_id,
                               "variants": {v: s.as_json() for v, s in result.summary.items()}}))
    if result.status != "finished":
        raise WorkbenchError(store.get_run(result.run_id).error or f"Run {result.run_id} failed.")


def record_cards(registry, store, run_id: str) -> list[str]:
    """Put each adapter variant's per-suite headline numbers on its card.json.

    Only full runs count (a --limit sample would misstate the version), so the card always
    describes whole suites; the run id says where the numbers came from.
    """
    from workbench.eval.report import summary_tables

    by_suite = summary_tables(store.results_frame(run_id)).by_suite
    # Keyed by content too: a suite folder reusing a shipped name must not replace its entry.
    hashes = {s.name: s.hash for s in store.get_run(run_id).suites}
    refs = []
    for label, rows in by_suite.groupby("variant_label"):
        if "@" not in str(label):  # the base model has no card
            continue
        results = [{"suite": row["suite"], "suite_hash": hashes[row["suite"]],
                    "accuracy": _round(row.get("accuracy")),
                    "resolution_rate": _round(row.get("resolution_rate")),
                    "n": int(row["n"]), "run_id": run_id}
                   for _, row in rows.iterrows()]
        registry.set_eval_summary(str(label), results)
        refs.append(str(label))
    return refs


def _round(value: object) -> float | None:
    return None if value is None or value != value else round(float(value), 4)


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
    diffs = variant_differences(frame)
    if not diffs.empty:
        click.secho("\nAgainst the first variant, same items (paired bootstrap, 95%)", bold=True)
        click.echo(diffs.drop(columns=["baseline", "value"]).to_string(
            index=False, float_format=lambda v: f"{v:+.3f}"))
    click.echo()


@click.command("runs")
@click.option("--limit", default=20, show_default=True, help="How many recent runs to list.")
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
