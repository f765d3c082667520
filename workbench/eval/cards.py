"""An adapter card's eval block from a finished full run (the CLI and the Evaluate tab).

Only full runs count (a sample would misstate the version), so a card always describes
whole suites; the run id says where the numbers came from. Entries are keyed by the suite's
name and content hash, so a suite folder reusing a shipped name never replaces its entry.
"""
from __future__ import annotations

from typing import Any

from workbench.eval.report import summary_tables
from workbench.eval.store import EvalStore


def record_cards(registry: Any, store: EvalStore, run_id: str) -> list[str]:
    """Put each adapter variant's per-suite headline numbers on its card.json; the refs."""
    by_suite = summary_tables(store.results_frame(run_id)).by_suite
    hashes = {s.name: s.hash for s in store.get_run(run_id).suites}
    refs = []
    for label, rows in by_suite.groupby("variant_label"):
        if "@" not in str(label):  # the base model has no card
            continue
        registry.set_eval_summary(str(label), [_entry(row, hashes[row["suite"]], run_id)
                                               for _, row in rows.iterrows()])
        refs.append(str(label))
    return refs


# Scores a suite has only sometimes (choice scoring, constrained format): on the card when present.
OPTIONAL = ("acc", "acc_norm", "format_compliance")


def _entry(row: Any, suite_hash: str, run_id: str) -> dict[str, Any]:
    out = {"suite": row["suite"], "suite_hash": suite_hash,
           "accuracy": _round(row.get("accuracy")),
           "resolution_rate": _round(row.get("resolution_rate"))}
    optional = {m: _round(row.get(m)) for m in OPTIONAL}
    out.update({m: v for m, v in optional.items() if v is not None})
    return {**out, "n": int(row["n"]), "run_id": run_id}


def _round(value: object) -> float | None:
    return None if value is None or value != value else round(float(value), 4)
