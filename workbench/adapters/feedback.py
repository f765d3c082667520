"""Ratings, resolved flags and arena votes from the store, cleaned into preference data.

``export_feedback`` reads ``chat_turns`` and ``arena_votes`` and writes, into one folder:

- ``kto.jsonl``: unpaired examples ``{"prompt": [...], "completion": [...], "label": bool}``;
- ``dpo.jsonl``: pairs ``{"prompt": [...], "chosen": [...], "rejected": [...]}``, where two
  answers to one question were judged differently (an arena vote, or two rated turns);
- ``report.json``: how many rows each rule removed, and the files' sha256.

A turn is *good* when rated 4–5 or marked resolved (a 3 counts only with resolved), *bad*
when rated 1–2 or marked unresolved; an arena win makes the winner good and the loser bad,
"both bad" makes both bad, a tie says nothing. Prompts are rebuilt as the chat sent them
(the chat system prompt, grounded on the region's policy when the turn was).

Cleaning, in order, each rule counted (the seed's data-cleaning rules):
``unclear_signal`` (no usable judgement), ``no_intent`` (greetings and small talk only),
``language`` (the question, or a good answer, is not in the turn's language), ``eval_leak``
(a near-duplicate of an eval item), ``near_duplicate`` (a question close to an earlier one,
4-gram MinHash), ``exact_duplicate`` (beyond one good and one bad answer per question).
Personal data is masked again with the current masker before anything is compared or written.
"""
from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections import Counter
from contextlib import closing
from dataclasses import asdict, dataclass, field, replace
from functools import lru_cache
from pathlib import Path

import yaml
from datasketch import MinHash, MinHashLSH

from workbench.adapters.leakcheck import (CONTAINMENT_LEAK, JACCARD_LEAK, NUM_PERM, QUOTED, ngrams,
                                         normalise)
from workbench.config import DATA_ROOT, connect_db, db_path
from workbench.errors import InputError
from workbench.eval.langdetect import detect
from workbench.domain.langs import LANGUAGES
from workbench.domain.pii import mask_pii
from workbench.domain.prompts import customer_prompt
from workbench.store.chatlog import ChatLog

RULES_FILE = DATA_ROOT / "feedback.yaml"
PHRASES_FILE = DATA_ROOT / "phrases" / "intents.yaml"
RULES = ("unclear_signal", "no_intent", "language", "eval_leak", "near_duplicate",
         "exact_duplicate")
FILES = ("kto.jsonl", "dpo.jsonl", "report.json")


@dataclass(frozen=True)
class Judged:
    """One answer to one question, judged good or bad."""

    question: str
    answer: str
    good: bool
    lang: str
    region: str | None
    grounded: bool
    # Who answered (name@version or base) and where the judgement came from.
    variant: str
    source: str
    # Arena vote id: the two sides of one vote form a DPO pair.
    vote: str | None = None

    def prompt(self) -> list[dict[str, str]]:
        return customer_prompt(self.question, lang=self.lang, region=self.region, grounded=self.grounded)


@dataclass
class ExportReport:
    """What an export read, removed and wrote."""

    read: int = 0
    removed: Counter = field(default_factory=Counter)
    # Rows whose text the masker changed (masked, not removed).
    pii_masked: int = 0
    kto: int = 0
    kto_good: int = 0
    dpo: int = 0
    sha256: dict[str, str] = field(default_factory=dict)
    # Judged answers read, per face that served them (api, chat, customer, arena, cli).
    by_face: Counter = field(default_factory=Counter)

    def as_json(self) -> dict:
        out = asdict(self)
        out["removed"] = {r: int(self.removed.get(r, 0)) for r in RULES}
        out["by_face"] = dict(sorted(self.by_face.items()))
        return out


# ---- reading the store -----------------------------------------------------------------
def _rows(path: Path, table: str) -> list[dict]:
    with closing(connect_db(path, rows=True)) as db:
        if not db.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?",
                          (table,)).fetchone():
            return []
        return [dict(r) for r in db.execute(f"SELECT * FROM {table} ORDER BY created")]


def turn_label(rating: int | None, resolved: int | None, escalated: int | None = None) -> bool | None:
    """Good / bad / None (no usable judgement) from a turn's rating, resolved flag and whether
    it was handed to a human agent (an escalated answer did not do the job)."""
    if resolved == 0 or escalated == 1 or (rating is not None and rating <= 2):
        return False
    if (rating is not None and rating >= 4) or resolved == 1:
        return True
    return None


def judged_turns(rows: list[dict]) -> tuple[list[Judged], int]:
    """Judged answers from chat turns, and how many rated turns said nothing usable."""
    out, unclear = [], 0
    for r in rows:
        if r.get("rating") is None and r.get("resolved") is None and r.get("escalated") is None:
            continue
        good = turn_label(r.get("rating"), r.get("resolved"), r.get("escalated"))
        if good is None or r.get("error") or not (r.get("answer_text") or "").strip():
            unclear += 1
            continue
        out.append(Judged(r["user_text"], r["answer_text"], good, r.get("lang") or "",
                          r.get("region"), bool(r.get("grounded")), r["variant"],
                          f"chat:{r['turn_id']}"))
    return out, unclear


def judged_votes(rows: list[dict]) -> tuple[list[Judged], int]:
    """Both sides of every decisive arena vote; ties carry no judgement."""
    out, ties = [], 0
    for v in rows:
        if v["vote"] == "tie":
            ties += 1
            continue
        for side in ("a", "b"):
            good = v["vote"] == side
            out.append(Judged(v["question"], v[f"answer_{side}"], good, v["lang"], v.get("region"),
                              v.get("region") is not None, v[f"variant_{side}"],
                              f"arena:{v['vote_id']}:{side}", v["vote_id"]))
    return out, ties


# ---- cleaning rules ----------------------------------------------------------------------
def customer_words(question: str) -> str:
    """What the customer wrote: a triple-quoted block inside a templated message, else all of
    it (instructions around it are the same for every message and would swamp comparisons)."""
    quoted = QUOTED.search(question)
    return quoted.group(1) if quoted else question


@lru_cache(maxsize=1)
def cleaning_rules() -> dict:
    rules = yaml.safe_load(RULES_FILE.read_text(encoding="utf-8"))
    greetings = yaml.safe_load(PHRASES_FILE.read_text(encoding="utf-8")) if PHRASES_FILE.is_file() else {}
    phrases: dict[str, list[str]] = {}
    for lang in LANGUAGES:
        words = list(rules["smalltalk"].get(lang, []))
        words += (greetings.get(lang) or {}).get("greetings", [])
        # Longest first, so "thank you very much" goes before "thank you".
        phrases[lang] = sorted({normalise(w) for w in words if normalise(w)}, key=len, reverse=True)
    return {**rules, "phrases": phrases}


def has_intent(text: str, lang: str) -> bool:
    """Whether anything but greetings and small talk is left of the message."""
    rules = cleaning_rules()
    rest = " " + normalise(customer_words(text)) + " "
    for phrase in rules["phrases"].get(lang, []) + rules["phrases"]["en"]:
        rest = re.sub(rf"(?<!\w){re.escape(phrase)}(?!\w)", " ", rest)
    letters = [c for c in rest if c.isalpha()]
    cjk = sum(1 for c in letters if unicodedata.name(c, "").startswith(("CJK", "HIRAGANA",
                                                                        "KATAKANA", "HANGUL")))
    thai = sum(1 for c in letters if unicodedata.name(c, "").startswith("THAI"))
    need = rules["min_content"]
    return (cjk >= need["cjk"] or thai >= need["thai"]
            or len(letters) - cjk - thai >= need["alphabetic"])


def in_language(j: Judged) -> bool:
    """The question (and a good answer) read as the turn's language; unknown length passes."""
    if j.lang not in LANGUAGES:
        return False
    texts = [customer_words(j.question), j.answer] if j.good else [customer_words(j.question)]
    return all(detect(t, j.lang).matches is not False for t in texts)


def _minhash(grams: set[str]) -> MinHash:
    mh = MinHash(num_perm=NUM_PERM)
    mh.update_batch([g.encode("utf-8") for g in grams])
    return mh


def eval_leaks(questions: list[str], eval_texts: list[str]) -> set[int]:
    """Indexes of questions that are near-duplicates of an eval item (the leak check's rule)."""
    sets = [ngrams(t) for t in eval_texts]
    lsh = MinHashLSH(threshold=0.3, num_perm=NUM_PERM)
    for i, grams in enumerate(sets):
        if grams:
            lsh.insert(str(i), _minhash(grams))
    leaks = set()
    for q, question in enumerate(questions):
        grams = ngrams(question)
        for key in lsh.query(_minhash(grams)) if grams else ():
            other = sets[int(key)]
            shared = len(grams & other)
            if shared / len(grams | other) >= JACCARD_LEAK or shared / len(other) >= CONTAINMENT_LEAK:
                leaks.add(q)
                break
    return leaks


def _default_eval_texts() -> list[str]:
    from workbench.adapters.traindata import eval_texts  # every split of every suite

    return eval_texts()


# ---- the pipeline ------------------------------------------------------------------------
def clean(judged: list[Judged], eval_texts: list[str], report: ExportReport) -> list[list[Judged]]:
    """Masked, filtered and de-duplicated answers, grouped by question (first-seen order)."""
    masked = []
    for j in judged:
        m = replace(j, question=mask_pii(j.question, j.region, j.lang),
                    answer=mask_pii(j.answer, j.region, j.lang))
        report.pii_masked += (m.question, m.answer) != (j.question, j.answer)
        masked.append(m)
    kept = _drop(masked, lambda j: has_intent(j.question, j.lang), "no_intent", report)
    kept = _drop(kept, in_language, "language", report)
    leaks = eval_leaks([customer_words(j.question) for j in kept], eval_texts)
    report.removed["eval_leak"] += len(leaks)
    kept = [j for i, j in enumerate(kept) if i not in leaks]
    groups: dict[str, list[Judged]] = {}
    for j in kept:
        groups.setdefault(normalise(j.question), []).append(j)
    return _drop_near_duplicates(list(groups.values()), report)


def _drop(rows: list[Judged], keep, rule: str, report: ExportReport) -> list[Judged]:
    out = [j for j in rows if keep(j)]
    report.removed[rule] += len(rows) - len(out)
    return out


def _drop_near_duplicates(groups: list[list[Judged]], report: ExportReport) -> list[list[Judged]]:
    threshold = float(cleaning_rules()["near_duplicate_jaccard"])
    lsh = MinHashLSH(threshold=threshold, num_perm=NUM_PERM)
    kept_sets: list[set[str]] = []
    out = []
    for group in groups:
        grams = ngrams(customer_words(group[0].question))
        mh = _minhash(grams)
        near = any(len(grams & kept_sets[int(k)]) / max(len(grams | kept_sets[int(k)]), 1) >= threshold
                   for k in lsh.query(mh))
        if near:
            report.removed["near_duplicate"] += len(group)
            continue
        lsh.insert(str(len(kept_sets)), mh)
        kept_sets.append(grams)
        out.append(group)
    return out


def examples(groups: list[list[Judged]], report: ExportReport) -> tuple[list[dict], list[dict]]:
    """One good and one bad KTO example per question; one DPO pair where both exist."""
    kto, dpo = [], []
    for group in groups:
        good = next((j for j in group if j.good), None)
        bad = next((j for j in group if not j.good), None)
        pair = _vote_pair(group) or ((good, bad) if good and bad else None)
        chosen = [j for j in (good, bad) if j is not None]
        report.removed["exact_duplicate"] += len(group) - len(chosen)
        kto += [{"prompt": j.prompt(), "completion": [{"role": "assistant", "content": j.answer}],
                 "label": j.good, "meta": _meta(j)} for j in chosen]
        if pair:
            win, lose = pair
            dpo.append({"prompt": win.prompt(),
                        "chosen": [{"role": "assistant", "content": win.answer}],
                        "rejected": [{"role": "assistant", "content": lose.answer}],
                        "meta": {**_meta(win), "rejected_variant": lose.variant,
                                 "rejected_source": lose.source}})
    return kto, dpo


def _vote_pair(group: list[Judged]) -> tuple[Judged, Judged] | None:
    for j in group:
        if j.vote and j.good:
            other = next((o for o in group if o.vote == j.vote and not o.good), None)
            if other is not None:
                return j, other
    return None


def _meta(j: Judged) -> dict:
    return {"lang": j.lang, "region": j.region, "variant": j.variant, "source": j.source}


def export_feedback(out: Path, db: Path | None = None,
                    eval_texts: list[str] | None = None) -> ExportReport:
    """Write kto.jsonl, dpo.jsonl and report.json into ``out`` (refused if any exists)."""
    out = Path(out)
    clash = [name for name in FILES if (out / name).exists()]
    if clash:
        raise InputError(f"{out / clash[0]} already exists; export into a new folder.")
    path = Path(db) if db else db_path()
    report = ExportReport()
    # Served turns come from the shared store (WORKBENCH_DB_URL when set, unless a file is named).
    rows = ChatLog(Path(db)).turns() if db else ChatLog().turns()
    report.by_face.update(r.get("face") or "chat" for r in rows
                          if any(r.get(k) is not None for k in ("rating", "resolved", "escalated")))
    turns, unclear = judged_turns(rows)
    votes, ties = judged_votes(_rows(path, "arena_votes"))
    report.read = len(turns) + unclear + len(votes) + ties
    report.removed["unclear_signal"] += unclear + ties
    groups = clean(turns + votes, _default_eval_texts() if eval_texts is None else eval_texts,
                   report)
    kto, dpo = examples(groups, report)
    report.kto, report.kto_good, report.dpo = len(kto), sum(r["label"] for r in kto), len(dpo)
    out.mkdir(parents=True, exist_ok=True)
    for name, rows in (("kto.jsonl", kto), ("dpo.jsonl", dpo)):
        data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode("utf-8")
        (out / name).write_bytes(data)
        report.sha256[name] = hashlib.sha256(data).hexdigest()
    (out / "report.json").write_text(json.dumps(report.as_json(), indent=2), encoding="utf-8")
    return report
