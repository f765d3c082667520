"""An adapter card's eval block from a finished full run (the CLI and the Evaluate tab).

Only full runs count (a sample would misstate the version), so a card always describes
whole suites; the run id says where the numbers came from. Entries are keyed by the suite's
name and content hash, so a suite folder reusing a shipped name never replaces its entry.

A suite with splits gets one entry per split (``regional-policy:dev``, ``regional-policy:test``),
each proportion with its 95% interval. The test entry is the suite's headline
(``"headline": true``) and carries the dev figures beside its own and the **generalization gap**
(dev minus test, per metric).
"""
from __future__ import annotations

from typing import Any

from workbench.eval.report import summary_tables
from workbench.eval.splits import HEADLINE_SPLIT, TUNING_SPLIT, family, split_summary
from workbench.eval.store import EvalStore
from workbench.eval.summary import PROPORTIONS
from workbench.eval.suite import split_of


def record_cards(registry: Any, store: EvalStore, run_id: str) -> list[str]:
    """Put each adapter variant's per-suite headline numbers on its card.json; the refs."""
    frame = store.results_frame(run_id)
    by_suite = summary_tables(frame).by_suite
    splits = split_summary(frame)
    hashes = {s.name: s.hash for s in store.get_run(run_id).suites}
    refs = []
    for label, rows in by_suite.groupby("variant_label"):
        if "@" not in str(label):  # the base model has no card
            continue
        registry.set_eval_summary(str(label), [
            _entry(row, hashes[row["suite"]], run_id, splits.get(family(row["suite"]), {}), str(label))
            for _, row in rows.iterrows()])
        refs.append(str(label))
    return refs


# Scores a suite has only sometimes (choice scoring, constrained format, phrasings): on the card
# when present.
OPTIONAL = tuple(m for m in PROPORTIONS if m not in ("accuracy", "resolution_rate"))


def _entry(row: Any, suite_hash: str, run_id: str, splits: dict, label: str) -> dict[str, Any]:
    out = {"suite": row["suite"], "suite_hash": suite_hash,
           "accuracy": _round(row.get("accuracy")),
           "resolution_rate": _round(row.get("resolution_rate"))}
    optional = {m: _round(row.get(m)) for m in OPTIONAL}
    out.update({m: v for m, v in optional.items() if v is not None})
    for metric in PROPORTIONS:
        low, high = _round(row.get(f"{metric}_low")), _round(row.get(f"{metric}_high"))
        if low is not None and high is not None:
            out[f"{metric}_ci"] = [low, high]
    split = split_of(str(row["suite"]))
    if split:
        out["split"] = split
    if split == HEADLINE_SPLIT and label in splits.get(TUNING_SPLIT, {}):
        dev = splits[TUNING_SPLIT][label]
        out["headline"] = True
        out["dev"] = {m: _round(v["value"]) for m, v in dev.items() if m in PROPORTIONS}
        out["generalization_gap"] = {m: _round(v) for m, v in
                                     splits.get("generalization_gap", {}).get(label, {}).items()}
    return {**out, "n": int(row["n"]), "run_id": run_id}


def _round(value: object) -> float | None:
    return None if value is None or value != value else round(float(value), 4)
