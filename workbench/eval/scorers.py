"""Scorers, registered by name: each turns (answer, item context) into a :class:`Score`.

A suite lists scorers by name in ``suite.yaml``; :func:`get_scorer` resolves them and fails
with a did-you-mean for unknown names. ``passed`` is None when a check does not apply to an
item (no facts expected) or cannot be told (a two-letter answer's language).
"""
from __future__ import annotations

import json
import re
from collections.abc import Callable

from workbench.errors import UnknownNameError
from workbench.eval.deflection import find_deflections
from workbench.eval.langdetect import detect
from workbench.eval.schema import Score, ScoreContext
from workbench.eval.textnorm import ascii_digits, normalize

Scorer = Callable[[str, ScoreContext], Score]
SCORERS: dict[str, Scorer] = {}
# Scorers whose passing means "the answer is right", as opposed to form checks; the first of
# these in a suite's list is the one its accuracy counts.
CONTENT_SCORERS = ("intent_label", "verdict", "facts")
# Scorers of an answer's machine-readable form: reported on their own, not part of resolution.
FORMAT_SCORERS = ("verdict_format",)
PAYERS = ("customer", "store")


def register_scorer(name: str) -> Callable[[Scorer], Scorer]:
    def add(fn: Scorer) -> Scorer:
        SCORERS[name] = fn
        return fn
    return add


def get_scorer(name: str) -> Scorer:
    if name not in SCORERS:
        raise UnknownNameError("scorer", name, SCORERS)
    return SCORERS[name]


def score_all(names: list[str] | tuple[str, ...], answer: str, ctx: ScoreContext) -> dict[str, Score]:
    return {name: get_scorer(name)(answer, ctx) for name in names}


# ---- intent_label ---------------------------------------------------------------------
def _label_form(text: str) -> str:
    """``"Order Tracking."`` -> ``"order_tracking"``: labels and answers meet in one spelling."""
    return re.sub(r"[\s\-]+", "_", re.sub(r"[^\w\s\-]", " ", normalize(text))).strip("_")


def find_label(answer: str, labels: tuple[str, ...]) -> str | None:
    """The label mentioned first in the answer; on a tie the longest (most specific) one."""
    text = _label_form(answer)
    hits: list[tuple[int, int, str]] = []
    for label in labels:
        m = re.search(rf"(?<![a-z0-9]){re.escape(_label_form(label))}(?![a-z0-9])", text)
        if m:
            hits.append((m.start(), -len(label), label))
    return min(hits)[2] if hits else None


@register_scorer("intent_label")
def intent_label(answer: str, ctx: ScoreContext) -> Score:
    if ctx.expected.intent is None:
        return Score(None, "no intent expected")
    predicted = find_label(answer, ctx.labels or (ctx.expected.intent,))
    if predicted is None:
        return Score(False, "no known label in the answer", None)
    ok = predicted == ctx.expected.intent
    return Score(ok, f"answered {predicted}" + ("" if ok else f", expected {ctx.expected.intent}"),
                 predicted)


# ---- facts ----------------------------------------------------------------------------
def has_fact(normalized_answer: str, fact: str) -> bool:
    """Whether a fact appears in an answer already passed through ``normalize``.

    Numbers match whole: fact "7" is not found in "17" or "14.70", but is in "07:00", and
    "14.90" is found in "١٤٫٩٠" or "14,90" because both sides are normalised.
    """
    fact = normalize(fact)
    pattern = re.escape(fact)
    if fact[:1].isdigit():
        pattern = r"(?<![\d.])0*" + pattern
    if fact[-1:].isdigit():
        pattern += r"(?!\d)"
    return re.search(pattern, normalized_answer) is not None


@register_scorer("facts")
def facts(answer: str, ctx: ScoreContext) -> Score:
    if not ctx.expected.facts:
        return Score(None, "no facts expected")
    text = normalize(answer)
    missing = [f for f in ctx.expected.facts if not has_fact(text, f)]
    found = len(ctx.expected.facts) - len(missing)
    detail = f"{found}/{len(ctx.expected.facts)} facts"
    if missing:
        detail += "; missing: " + ", ".join(missing)
    return Score(not missing, detail)


# ---- verdict --------------------------------------------------------------------------
def last_json_object(text: str, lenient: bool = True) -> dict | None:
    """The last top-level ``{...}`` that parses as a JSON object (models add prose around it).

    Scanning forward and skipping past each parsed object keeps a nested object from being
    taken for the verdict; when ``lenient``, Python-style ``True``/``False``, curly quotes and
    non-ASCII digits are accepted too.
    """
    if lenient:
        text = ascii_digits(text).replace("\u201c", '"').replace("\u201d", '"')
        text = re.sub(r"\bTrue\b", "true", re.sub(r"\bFalse\b", "false", text))
    decoder, found, pos = json.JSONDecoder(), None, 0
    while (start := text.find("{", pos)) >= 0:
        try:
            obj, end = decoder.raw_decode(text, start)
        except ValueError:
            pos = start + 1
            continue
        if isinstance(obj, dict):
            found = obj
        pos = end
    return found


def _as_bool(value: object) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "yes", "no"):
        return value.strip().lower() in ("true", "yes")
    return None


def _as_int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)) and float(value).is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"\s*\d+\s*", value):
        return int(value)
    return None


@register_scorer("verdict")
def verdict(answer: str, ctx: ScoreContext) -> Score:
    exp = ctx.expected
    if exp.eligible is None and exp.days is None:
        return Score(None, "no verdict expected")
    obj = last_json_object(answer)
    if obj is None:
        return Score(False, "no JSON verdict in the answer")
    wrong: list[str] = []
    if exp.eligible is not None and _as_bool(obj.get("eligible")) is not exp.eligible:
        wrong.append(f"eligible={obj.get('eligible')!r}, expected {str(exp.eligible).lower()}")
    if exp.days is not None and _as_int(obj.get("days")) != exp.days:
        wrong.append(f"days={obj.get('days')!r}, expected {exp.days}")
    # The whole verdict as read (payer too): paraphrase consistency compares these.
    prediction = json.dumps({"eligible": _as_bool(obj.get("eligible")), "days": _as_int(obj.get("days")),
                             "payer": obj.get("payer")}, ensure_ascii=False)
    return Score(not wrong, "; ".join(wrong) or "eligible and days match", prediction)


@register_scorer("verdict_format")
def verdict_format(answer: str, ctx: ScoreContext) -> Score:
    """Passes when the answer ends with strict JSON: eligible (true/false), days (a whole
    number) and payer ("customer" or "store"), whatever their values."""
    if ctx.expected.eligible is None and ctx.expected.days is None:
        return Score(None, "no verdict expected")
    obj = last_json_object(answer, lenient=False)
    if obj is None:
        return Score(False, "no strict JSON object in the answer")
    problems = []
    if not isinstance(obj.get("eligible"), bool):
        problems.append("eligible is not true/false")
    days = obj.get("days")
    if isinstance(days, bool) or not isinstance(days, int) or days < 0:
        problems.append("days is not a whole number")
    if obj.get("payer") not in PAYERS:
        problems.append('payer is not "customer" or "store"')
    return Score(not problems, "; ".join(problems) or "eligible, days and payer well-formed")


# ---- deflection -----------------------------------------------------------------------
@register_scorer("deflection")
def deflection(answer: str, ctx: ScoreContext) -> Score:
    """Passes when the answer does NOT deflect.

    Refusals and "as an AI" always deflect. "Contact customer service" deflects only when the
    answer gives none of the expected facts: the FAQ's own support-hours answer legitimately
    says when customer service can be reached.
    """
    found = find_deflections(answer)
    hard = [d for d in found if d.kind != "redirect"]
    if hard:
        return Score(False, f"{hard[0].kind} ({hard[0].lang}): {hard[0].phrase}")
    if found:
        text = normalize(answer)
        if not any(has_fact(text, f) for f in ctx.expected.facts):
            return Score(False, f"redirect ({found[0].lang}): {found[0].phrase}")
        return Score(True, "mentions customer service but answers with the facts")
    return Score(True, "no deflection")


# ---- language_match -------------------------------------------------------------------
@register_scorer("language_match")
def language_match(answer: str, ctx: ScoreContext) -> Score:
    result = detect(answer, ctx.lang)
    return Score(result.matches, result.detail, result.guess or None)
