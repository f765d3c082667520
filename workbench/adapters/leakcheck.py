"""Train/eval separation: near-duplicates of eval items in training dialogs.

An exact-substring test misses a paraphrase that swaps one word or adds a greeting, so both
sides are compared as sets of character 4-grams of their normalised text (NFKC, case-folded,
punctuation and spacing collapsed), which treats scripts with and without spaces alike.
``datasketch`` MinHash LSH finds candidate pairs (Jaccard and containment indexes); each
candidate is then scored exactly:

- ``jaccard``: shared 4-grams over all 4-grams of the two texts;
- ``containment``: share of the eval text's 4-grams found in the training text (an eval
  question wrapped in a greeting or a longer message).

A pair is a leak when ``jaccard >= 0.5`` or ``containment >= 0.8``. From training dialogs only
the customer's words are compared: the text filled into a suite's ``{text}`` placeholder (or
a triple-quoted block), not the prompt template both sides share.

    python -m workbench.adapters.leakcheck [--data FILE ...] [--suite NAME ...] [--top 20] [--json]
"""
from __future__ import annotations

import argparse
import json
import re
import string
import sys
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from datasketch import MinHash, MinHashLSH, MinHashLSHEnsemble

from workbench.config import DATA_ROOT
from workbench.errors import InputError
from workbench.eval.suite import Suite, list_suites, load_suite

NGRAM = 4
NUM_PERM = 128
JACCARD_LEAK = 0.5
CONTAINMENT_LEAK = 0.8
# Pairs below this Jaccard are too far apart to be worth listing among the closest.
REPORT_FLOOR = 0.3
DEFAULT_DATA = DATA_ROOT / "train"
QUOTED = re.compile(r'"""(.+?)"""', re.S)


@dataclass(frozen=True)
class Text:
    """One side of a comparison, with where it came from."""

    # "suite:item_id" for eval items, "file.jsonl:line" for training dialogs.
    source: str
    # The text as written.
    text: str


@dataclass(frozen=True)
class LeakPair:
    """An eval item and the training text closest to it."""

    eval_source: str
    eval_text: str
    train_source: str
    train_text: str
    jaccard: float
    containment: float

    @property
    def leak(self) -> bool:
        return self.jaccard >= JACCARD_LEAK or self.containment >= CONTAINMENT_LEAK


@dataclass(frozen=True)
class LeakReport:
    """The check's outcome: closest pairs first."""

    # Eval items and training texts compared.
    n_eval: int
    n_train: int
    # Per eval item its closest training text (above REPORT_FLOOR), most similar first.
    closest: list[LeakPair]

    @property
    def leaks(self) -> list[LeakPair]:
        return [p for p in self.closest if p.leak]

    def as_json(self, top: int = 20) -> dict:
        return {"n_eval": self.n_eval, "n_train": self.n_train, "leaks": len(self.leaks),
                "thresholds": {"jaccard": JACCARD_LEAK, "containment": CONTAINMENT_LEAK,
                               "ngram": NGRAM},
                "closest": [asdict(p) | {"leak": p.leak} for p in self.closest[:top]]}


# ---- texts ---------------------------------------------------------------------------------
def normalise(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).casefold()
    text = "".join(" " if unicodedata.category(c)[0] in "PSZC" else c for c in text)
    return " ".join(text.split())


def ngrams(text: str, n: int = NGRAM) -> set[str]:
    """Character n-grams of the normalised text (the whole text when shorter than n)."""
    norm = normalise(text)
    return {norm[i:i + n] for i in range(max(len(norm) - n + 1, 1))} if norm else set()


def template_pattern(template: str) -> re.Pattern[str] | None:
    """A regex that reads ``{text}`` back out of a filled prompt template."""
    parts, has_text = [], False
    for literal, field, _, _ in string.Formatter().parse(template.strip()):
        parts.append(re.escape(literal))
        if field == "text":
            parts.append("(?P<text>.+?)")
            has_text = True
        elif field is not None:
            parts.append(".*?")
    return re.compile("".join(parts), re.S) if has_text else None


def customer_text(content: str, patterns: Sequence[re.Pattern[str]]) -> str:
    """The customer's words in a user message built from a suite template."""
    content = content.strip()
    for pattern in patterns:
        m = pattern.fullmatch(content)
        if m:
            return m.group("text")
    quoted = QUOTED.search(content)
    return quoted.group(1) if quoted else content


def eval_texts(suites: Iterable[Suite]) -> list[Text]:
    return [Text(f"{s.name}:{item.id}", item.text) for s in suites for item in s.items]


def training_texts(paths: Iterable[Path], suites: Sequence[Suite]) -> list[Text]:
    """The customer text of every user turn in JSONL dialog files (``{"messages": [...]}``)."""
    patterns = [p for p in (template_pattern(s.prompt_template) for s in suites) if p]
    out = []
    for path in paths:
        for lineno, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                messages = json.loads(line)["messages"]
                users = [m["content"] for m in messages if m["role"] == "user"]
            except (ValueError, KeyError, TypeError) as exc:
                raise InputError(f"{Path(path).name}:{lineno}: expected {{\"messages\": "
                                 f"[{{\"role\", \"content\"}}, ...]}} ({exc}).") from exc
            out += [Text(f"{Path(path).name}:{lineno}", customer_text(u, patterns)) for u in users]
    return out


# ---- comparison ----------------------------------------------------------------------------
def _minhashes(sets: list[set[str]]) -> list[MinHash]:
    return MinHash.bulk([[g.encode("utf-8") for g in s] for s in sets], num_perm=NUM_PERM)


def check_leaks(train: Sequence[Text], evals: Sequence[Text]) -> LeakReport:
    """Every eval item's closest training text, via MinHash LSH then exact scores."""
    train_sets, eval_sets = [ngrams(t.text) for t in train], [ngrams(e.text) for e in evals]
    train_mh, eval_mh = _minhashes(train_sets), _minhashes(eval_sets)
    near = MinHashLSH(threshold=REPORT_FLOOR, num_perm=NUM_PERM)
    inside = MinHashLSHEnsemble(threshold=CONTAINMENT_LEAK, num_perm=NUM_PERM, num_part=8)
    with near.insertion_session() as session:
        for i, mh in enumerate(train_mh):
            session.insert(i, mh)
    inside.index((i, mh, max(len(s), 1)) for i, (mh, s) in enumerate(zip(train_mh, train_sets)))
    closest = []
    for e, (mh, grams) in enumerate(zip(eval_mh, eval_sets)):
        if not grams:
            continue
        candidates = set(near.query(mh)) | set(inside.query(mh, len(grams)))
        scored = [_pair(evals[e], grams, train[i], train_sets[i]) for i in candidates]
        scored = [p for p in scored if p.jaccard >= REPORT_FLOOR or p.leak]
        if scored:
            closest.append(max(scored, key=lambda p: (p.leak, p.jaccard, p.containment)))
    closest.sort(key=lambda p: (p.leak, p.jaccard, p.containment), reverse=True)
    return LeakReport(len(evals), len(train), closest)


def _pair(e: Text, eg: set[str], t: Text, tg: set[str]) -> LeakPair:
    shared = len(eg & tg)
    return LeakPair(e.source, e.text, t.source, t.text, round(shared / len(eg | tg), 4),
                    round(shared / len(eg), 4))


def check_files(paths: Sequence[Path] | None = None, suite_names: Sequence[str] | None = None) -> LeakReport:
    """Training JSONL files (default ``workbench/data/train/*.jsonl``) against eval suites (default all)."""
    suites = [load_suite(n) for n in (suite_names or list_suites())]
    files = list(paths) if paths else sorted(DEFAULT_DATA.glob("*.jsonl"))
    if not files:
        raise InputError(f"No training files to check (looked in {DEFAULT_DATA}).")
    return check_leaks(training_texts(files, suites), eval_texts(suites))


def format_report(report: LeakReport, top: int = 20) -> str:
    lines = [f"{report.n_eval} eval items vs {report.n_train} training texts: "
             f"{len(report.leaks)} leak(s) (4-gram Jaccard >= {JACCARD_LEAK} or containment "
             f">= {CONTAINMENT_LEAK}). Closest pairs:"]
    for p in report.closest[:top]:
        mark = "LEAK" if p.leak else "ok  "
        lines.append(f"{mark} J={p.jaccard:.2f} C={p.containment:.2f}  {p.eval_source}: "
                     f"{p.eval_text!r}\n       {p.train_source}: {p.train_text!r}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Near-duplicates of eval items in training data.")
    ap.add_argument("--data", type=Path, action="append", help="Training JSONL file (repeat).")
    ap.add_argument("--suite", action="append", help="Eval suite name or folder (repeat).")
    ap.add_argument("--top", type=int, default=20, help="How many closest pairs to list.")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    report = check_files(args.data, args.suite)
    print(json.dumps(report.as_json(args.top), ensure_ascii=False) if args.json
          else format_report(report, args.top))
    return 1 if report.leaks else 0


if __name__ == "__main__":
    sys.exit(main())
