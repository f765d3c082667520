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

**Shape-level check** (against the suites' ``test`` splits): a question template reused with
other slot values (another region, product, number of days) shares few 4-grams with the item
it was copied from, so both sides are also compared after masking their slots (digits,
number words, places, currencies, product names and cities: ``eval_sets/slots.yaml`` and the
phrase tables) with one placeholder. A pair is a shape leak when the masked texts have
``jaccard >= 0.6``, or ``containment >= 0.85`` for a test item of at least 40 masked 4-grams
(a short question's shape is found inside many longer messages). ``workbench train`` refuses
data with any whole-string or shape leak of a test item, naming the closest pairs.

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
from functools import lru_cache
from pathlib import Path

import yaml

from datasketch import MinHash, MinHashLSH, MinHashLSHEnsemble

from workbench.config import DATA_ROOT, eval_sets_root, phrases_dir
from workbench.errors import InputError
from workbench.eval.suite import Suite, list_suites, load_splits

NGRAM = 4
NUM_PERM = 128
JACCARD_LEAK = 0.5
CONTAINMENT_LEAK = 0.8
# Pairs below this Jaccard are too far apart to be worth listing among the closest.
REPORT_FLOOR = 0.3
SHAPE_JACCARD = 0.6
SHAPE_CONTAINMENT = 0.85
# Masked 4-grams a test item needs before containment alone can make it a shape leak.
SHAPE_MIN_GRAMS = 40
SLOT = "0"
# Scripts written without spaces between words: their slot values match inside words.
UNSPACED_CHARS = r"\u0e00-\u0e7f\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af"
UNSPACED = re.compile(f"[{UNSPACED_CHARS}]")
# A letter or digit of a script written with spaces: what may not touch a spaced slot value.
SPACED_CHAR = rf"[^\W{UNSPACED_CHARS}]"
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
    # Over the thresholds of the check that found it.
    leak: bool


@dataclass(frozen=True)
class Thresholds:
    """When a scored pair counts as a leak."""

    jaccard: float = JACCARD_LEAK
    containment: float = CONTAINMENT_LEAK
    # Eval 4-grams needed before containment alone counts.
    min_grams: int = 0


SHAPE = Thresholds(SHAPE_JACCARD, SHAPE_CONTAINMENT, SHAPE_MIN_GRAMS)


@dataclass(frozen=True)
class LeakReport:
    """The check's outcome: closest pairs first."""

    # Eval items and training texts compared.
    n_eval: int
    n_train: int
    # Per eval item its closest training text (above REPORT_FLOOR), most similar first.
    closest: list[LeakPair]
    # What made a pair a leak, and whether slots were masked first (the shape check).
    limits: Thresholds = Thresholds()
    shape: bool = False

    @property
    def leaks(self) -> list[LeakPair]:
        return [p for p in self.closest if p.leak]

    def as_json(self, top: int = 20) -> dict:
        return {"n_eval": self.n_eval, "n_train": self.n_train, "leaks": len(self.leaks),
                "thresholds": {"jaccard": self.limits.jaccard, "containment": self.limits.containment,
                               "min_grams": self.limits.min_grams, "ngram": NGRAM,
                               "slots_masked": self.shape},
                "closest": [asdict(p) for p in self.closest[:top]]}


# ---- texts ---------------------------------------------------------------------------------
def normalise(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).casefold()
    text = "".join(" " if unicodedata.category(c)[0] in "PSZC" else c for c in text)
    return " ".join(text.split())


def _slot_values() -> list[str]:
    """Every listed slot value: ``eval_sets/slots.yaml`` plus the phrase tables' cities,
    item names and products."""
    try:
        slots = yaml.safe_load((eval_sets_root() / "slots.yaml").read_text(encoding="utf-8")) or {}
        tables = {n: yaml.safe_load((phrases_dir() / f"{n}.yaml").read_text(encoding="utf-8"))
                  for n in ("policy", "intents", "regions")}
    except (OSError, yaml.YAMLError) as exc:
        raise InputError(f"Cannot read the slot values of the shape check ({exc}).") from exc
    words = [w for ws in (slots.get("number_words") or {}).values() for w in ws]
    words += list(slots.get("currencies") or []) + [w for ws in slots.get("places") or [] for w in ws]
    for name, entry in ((n, e) for n, t in tables.items() for e in t.values()):
        if isinstance(entry, dict):
            items = entry.get("items") if name == "policy" else None
            words += entry.get("cities", []) + entry.get("products", [])
            words += [i for values in (items or {}).values() for i in values]
    return [str(w) for w in words]


@lru_cache(maxsize=1)
def slot_pattern() -> re.Pattern[str]:
    """One regex over every slot value: digits, then the listed values, longest first."""
    norm = sorted({normalise(w) for w in _slot_values()} - {""}, key=len, reverse=True)
    spaced = "|".join(re.escape(w) for w in norm if not UNSPACED.search(w))
    unspaced = "|".join(re.escape(w) for w in norm if UNSPACED.search(w))
    return re.compile(rf"\d+|(?<!{SPACED_CHAR})(?:{spaced})(?!{SPACED_CHAR})|{unspaced}")


def mask_slots(text: str) -> str:
    """The normalised text with every slot value replaced by one placeholder."""
    return " ".join(slot_pattern().sub(f" {SLOT} ", normalise(text)).split())


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


def check_leaks(train: Sequence[Text], evals: Sequence[Text], limits: Thresholds = Thresholds(),
                shape: bool = False) -> LeakReport:
    """Every eval item's closest training text, via MinHash LSH then exact scores; with
    ``shape``, both sides are compared after ``mask_slots``."""
    view = mask_slots if shape else (lambda text: text)
    train_sets = [ngrams(view(t.text)) for t in train]
    eval_sets = [ngrams(view(e.text)) for e in evals]
    train_mh, eval_mh = _minhashes(train_sets), _minhashes(eval_sets)
    near = MinHashLSH(threshold=REPORT_FLOOR, num_perm=NUM_PERM)
    inside = MinHashLSHEnsemble(threshold=limits.containment, num_perm=NUM_PERM, num_part=8)
    with near.insertion_session() as session:
        for i, mh in enumerate(train_mh):
            session.insert(i, mh)
    inside.index((i, mh, max(len(s), 1)) for i, (mh, s) in enumerate(zip(train_mh, train_sets)))
    closest = []
    for e, (mh, grams) in enumerate(zip(eval_mh, eval_sets)):
        if not grams:
            continue
        candidates = set(near.query(mh)) | set(inside.query(mh, len(grams)))
        scored = [_pair(evals[e], grams, train[i], train_sets[i], limits) for i in candidates]
        scored = [p for p in scored if p.jaccard >= REPORT_FLOOR or p.leak]
        if scored:
            closest.append(max(scored, key=lambda p: (p.leak, p.jaccard, p.containment)))
    closest.sort(key=lambda p: (p.leak, p.jaccard, p.containment), reverse=True)
    return LeakReport(len(evals), len(train), closest, limits, shape)


def _pair(e: Text, eg: set[str], t: Text, tg: set[str], limits: Thresholds) -> LeakPair:
    shared = len(eg & tg)
    jaccard, contained = round(shared / len(eg | tg), 4), round(shared / len(eg), 4)
    leak = jaccard >= limits.jaccard or (contained >= limits.containment
                                         and len(eg) >= limits.min_grams)
    return LeakPair(e.source, e.text, t.source, t.text, jaccard, contained, leak)


def _files(paths: Sequence[Path] | None) -> list[Path]:
    files = list(paths) if paths else sorted(DEFAULT_DATA.glob("*.jsonl"))
    if not files:
        raise InputError(f"No training files to check (looked in {DEFAULT_DATA}).")
    return files


def check_files(paths: Sequence[Path] | None = None, suite_names: Sequence[str] | None = None) -> LeakReport:
    """Training JSONL files (default ``workbench/data/train/*.jsonl``) against every split of
    the eval suites (default all)."""
    suites = [s for n in (suite_names or list_suites()) for s in load_splits(n)]
    return check_leaks(training_texts(_files(paths), suites), eval_texts(suites))


def check_test_split(paths: Sequence[Path] | None = None,
                     suite_names: Sequence[str] | None = None) -> tuple[LeakReport, LeakReport]:
    """Training files against the suites' test splits: whole strings, then shapes."""
    suites = [s for n in (suite_names or list_suites()) for s in load_splits(n)]
    train = training_texts(_files(paths), suites)
    evals = eval_texts([s for s in suites if s.split == "test"])
    return check_leaks(train, evals), check_leaks(train, evals, SHAPE, shape=True)


def overlap_with_test_split(paths: Sequence[Path], top: int = 5) -> str:
    """The reports of ``check_test_split`` that found leaks, for a refusal; "" when clean."""
    return "\n".join(format_report(r, top) for r in check_test_split(paths) if r.leaks)


def format_report(report: LeakReport, top: int = 20) -> str:
    masked, what = ("masked ", "shape ") if report.shape else ("", "")
    limits = (f"{masked}4-gram Jaccard >= {report.limits.jaccard:g} or containment "
              f">= {report.limits.containment:g}")
    lines = [f"{report.n_eval} eval items vs {report.n_train} training texts: "
             f"{len(report.leaks)} {what}leak(s) ({limits}). Closest pairs:"]
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
    _, shape = check_test_split(args.data, args.suite)
    if args.json:
        print(json.dumps(report.as_json(args.top) | {"shape": shape.as_json(args.top)},
                         ensure_ascii=False))
    else:
        print(format_report(report, args.top) + "\n\nShapes against the test splits: "
              + format_report(shape, args.top))
    return 1 if report.leaks or shape.leaks else 0


if __name__ == "__main__":
    sys.exit(main())
