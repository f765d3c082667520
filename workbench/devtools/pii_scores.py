"""Recall and false positives of the PII masker on a labelled corpus, per category.

A corpus line is ``{"id", "lang", "region", "text", "pii": [{"kind", "value"}],
"keep": [{"kind", "value"}]}``: ``pii`` lists what must disappear from the masked text,
``keep`` the look-alikes (dates, prices, tracking numbers, quantities, codes) that must
survive it unchanged. Optional: ``set`` (``tuning`` or ``holdout``) and ``tags`` (labels
of a group of cases, e.g. the leak they were written for); each gets its own score line.

    python -m workbench.devtools.pii_scores [CORPUS] [--no-hints] [--json]
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path

from workbench.errors import InputError
from workbench.domain.pii import TAGS, mask_pii
from workbench.config import REPO_ROOT

DEFAULT_CORPUS = REPO_ROOT / "tests" / "data" / "pii_corpus.jsonl"


@dataclass(frozen=True)
class CategoryScore:
    """One row of the table."""

    # "pii" (must be masked) or "look-alike" (must be kept).
    role: str
    # The PII kind (email, phone, ...) or the look-alike kind (date, price, ...).
    kind: str
    # Entries of this kind in the corpus.
    n: int
    # PII: entries removed from the text; look-alikes: entries changed by masking.
    hits: int
    # PII only: entries replaced by their own kind's tag (not just by some tag).
    tagged: int | None

    @property
    def rate(self) -> float:
        return self.hits / self.n if self.n else 0.0


@dataclass(frozen=True)
class CorpusScores:
    """Per-category rows and the totals the targets are stated on."""

    rows: list[CategoryScore]
    # Texts scored.
    texts: int
    # Languages among them.
    languages: int
    # Share of PII entries masked, over all kinds.
    recall: float
    # Share of look-alike entries changed, over all kinds.
    false_positive_rate: float
    # Entries that went wrong, for reading: (id, role, kind, value, masked text).
    misses: list[tuple[str, str, str, str, str]]
    # Texts with no PII at all, and how many of them masking changed in any way.
    clean_texts: int = 0
    clean_changed: int = 0


def load_corpus(path: Path = DEFAULT_CORPUS) -> list[dict]:
    rows = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            for entry in row["pii"] + row["keep"]:
                if entry["value"] not in row["text"]:
                    raise ValueError(f"{entry['value']!r} is not in the text")
        except (ValueError, KeyError, TypeError) as exc:
            raise InputError(f"{path.name}:{lineno}: {exc}") from exc
        rows.append(row)
    return rows


def score_corpus(rows: list[dict], hints: bool = True) -> CorpusScores:
    """Mask every text (with its language and region unless ``hints`` is off) and count."""
    counts: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0])
    misses = []
    clean = [0, 0]
    for row in rows:
        masked = mask_pii(row["text"], row.get("region") if hints else None,
                          row.get("lang") if hints else None)
        if not row["pii"]:
            clean[0], clean[1] = clean[0] + 1, clean[1] + (masked != row["text"])
        for entry in row["pii"]:
            c = counts[("pii", entry["kind"])]
            gone = entry["value"] not in masked
            c[0], c[1] = c[0] + 1, c[1] + gone
            c[2] += gone and TAGS[entry["kind"]] in masked
            if not gone:
                misses.append((row["id"], "pii", entry["kind"], entry["value"], masked))
        for entry in row["keep"]:
            c = counts[("look-alike", entry["kind"])]
            changed = entry["value"] not in masked
            c[0], c[1] = c[0] + 1, c[1] + changed
            if changed:
                misses.append((row["id"], "look-alike", entry["kind"], entry["value"], masked))
    table = [CategoryScore(role, kind, n, hits, tagged if role == "pii" else None)
             for (role, kind), (n, hits, tagged) in sorted(counts.items())]
    pii = [r for r in table if r.role == "pii"]
    fake = [r for r in table if r.role != "pii"]
    return CorpusScores(table, len(rows), len({r["lang"] for r in rows}),
                        sum(r.hits for r in pii) / max(sum(r.n for r in pii), 1),
                        sum(r.hits for r in fake) / max(sum(r.n for r in fake), 1), misses,
                        clean[0], clean[1])


def markdown(scores: CorpusScores) -> str:
    lines = ["| role | category | n | masked | rate | own tag |", "|---|---|---:|---:|---:|---:|"]
    for r in scores.rows:
        tag = "" if r.tagged is None else str(r.tagged)
        lines.append(f"| {r.role} | {r.kind} | {r.n} | {r.hits} | {r.rate:.1%} | {tag} |")
    lines.append(f"\n{scores.texts} texts in {scores.languages} languages: recall "
                 f"**{scores.recall:.1%}**, false positives **{scores.false_positive_rate:.1%}**; "
                 f"{scores.clean_changed} of {scores.clean_texts} texts without PII changed")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="PII recall and false positives per category.")
    ap.add_argument("corpus", nargs="?", type=Path, default=DEFAULT_CORPUS)
    ap.add_argument("--no-hints", action="store_true",
                    help="Mask without each text's language and region (all store regions).")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    rows = load_corpus(args.corpus)
    scores = score_corpus(rows, hints=not args.no_hints)
    if args.json:
        print(json.dumps({"rows": [asdict(r) for r in scores.rows], "recall": scores.recall,
                          "false_positive_rate": scores.false_positive_rate}, ensure_ascii=False))
    else:
        print(markdown(scores))
        groups = {r.get("set", "") for r in rows} | {f"#{t}" for r in rows for t in r.get("tags", ())}
        for name in sorted(groups - {""}):
            part = score_corpus([r for r in rows if r.get("set") == name
                                 or name[1:] in r.get("tags", ())], hints=not args.no_hints)
            print(f"{name}: {part.texts} texts, recall {part.recall:.1%}, "
                  f"false positives {part.false_positive_rate:.1%}")
        for miss in scores.misses:
            print("  missed" if miss[1] == "pii" else "  changed", *miss, sep=" | ")
    return 0


if __name__ == "__main__":
    sys.exit(main())
