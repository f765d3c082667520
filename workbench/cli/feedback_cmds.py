"""`workbench arena ...` and `workbench feedback ...`: votes, ratings and preference data."""
from __future__ import annotations

import json
from pathlib import Path

import click


# ---- arena: blind pairwise votes and their Bradley–Terry leaderboard ----------------------
@click.group("arena")
def arena() -> None:
    """Blind arena votes from the Chat tab, rated with Bradley–Terry.

    Example: workbench arena leaderboard --by-lang
    """


@arena.command("leaderboard")
@click.option("--lang", default=None, help="Only votes in this language code, e.g. de.")
@click.option("--by-lang", is_flag=True, help="One leaderboard per language.")
@click.option("--bootstrap", default=1000, show_default=True, type=click.IntRange(50, 20000),
              help="Bootstrap resamples for the 95% intervals.")
@click.option("--seed", default=0, show_default=True, help="Bootstrap seed.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object instead of a table.")
def arena_leaderboard(lang: str | None, by_lang: bool, bootstrap: int, seed: int,
                      as_json: bool) -> None:
    """Ratings of every variant from all arena votes (ties and "both bad" count half),
    Elo scale, with 95% intervals from a seeded bootstrap.

    Example: workbench arena leaderboard --json
    """
    from workbench.eval.arena import ArenaStore, leaderboard

    votes = ArenaStore().votes(lang)
    overall = leaderboard(votes, b=bootstrap, seed=seed)
    per_lang = leaderboard(votes, by_lang=True, b=bootstrap, seed=seed) if by_lang else None
    if as_json:
        out = {"votes": int(len(votes)), "bootstrap": bootstrap, "seed": seed,
               "overall": _records(overall)}
        if per_lang is not None:
            out["by_lang"] = _records(per_lang)
        click.echo(json.dumps(out, ensure_ascii=False))
        return
    if votes.empty:
        click.echo("No arena votes yet. Vote in the Chat tab's blind arena first.")
        return
    click.secho(f"Arena leaderboard ({len(votes)} votes)", bold=True)
    click.echo(_table(overall))
    if per_lang is not None:
        for code, rows in per_lang.groupby("lang", sort=True):
            click.secho(f"\n{code}", bold=True)
            click.echo(_table(rows.drop(columns=["lang"])))


def _records(table) -> list[dict]:
    return [{k: (round(v, 1) if isinstance(v, float) else v) for k, v in row.items()}
            for row in table.to_dict(orient="records")]


def _table(table) -> str:
    shown = table.copy()
    shown["95% CI"] = [f"{lo:.0f}–{hi:.0f}" for lo, hi in zip(shown["low"], shown["high"])]
    shown["rating"] = shown["rating"].map(lambda v: f"{v:.0f}")
    return shown.drop(columns=["low", "high"]).to_string(index=False)


ARENA_COMMANDS: list[click.Command] = [arena]

# ---- feedback: ratings and votes into preference data (separate group) --------------------
@click.group("feedback")
def feedback() -> None:
    """Ratings, resolved flags and arena votes as preference data for training.

    Example: workbench feedback export --out data/feedback/2026-12
    """


@feedback.command("export")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for kto.jsonl, dpo.jsonl and report.json (must not hold them yet).")
@click.option("--json", "as_json", is_flag=True, help="End with the report as one JSON line.")
def feedback_export(out: Path, as_json: bool) -> None:
    """KTO examples and DPO pairs from the store: PII masked, small talk, wrong-language
    questions, eval-item paraphrases and duplicate questions removed (counted per rule).

    Example: workbench feedback export --out data/feedback/2026-12 --json
    """
    from workbench.adapters.feedback import RULES, export_feedback

    report = export_feedback(out)
    click.echo(f"Read {report.read} judged answers; wrote {report.kto} KTO examples "
               f"({report.kto_good} good) and {report.dpo} DPO pairs to {out}.")
    for rule in RULES:
        click.echo(f"  removed by {rule}: {report.removed.get(rule, 0)}")
    click.echo(f"  masked (personal data): {report.pii_masked}")
    faces = ", ".join(f"{face} {n}" for face, n in sorted(report.by_face.items())) or "none"
    click.echo(f"  judged answers by face: {faces}")
    if as_json:
        click.echo(json.dumps(report.as_json(), ensure_ascii=False))


FEEDBACK_COMMANDS: list[click.Command] = [feedback]
COMMANDS: list[click.Command] = [*ARENA_COMMANDS, *FEEDBACK_COMMANDS]
