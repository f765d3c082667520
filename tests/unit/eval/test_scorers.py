"""Scorers against hand-labelled answers in all 15 languages, plus digit normalisation."""
from __future__ import annotations

import json
from collections import Counter

import pytest

from workbench.errors import UnknownNameError
from workbench.eval.schema import Expected, ScoreContext
from workbench.eval.scorers import (SCORERS, facts, find_label, get_scorer, last_json_object,
                                    verdict)
from workbench.eval.textnorm import ascii_digits, normalize
from workbench.domain.langs import LANGUAGES
from workbench.config import REPO_ROOT

VALIDATION = REPO_ROOT / "tests" / "data" / "scorer_validation.jsonl"
ROWS = [json.loads(line) for line in VALIDATION.read_text(encoding="utf-8").splitlines() if line.strip()]


def _context(row: dict) -> ScoreContext:
    e = row["expected"]
    expected = Expected(intent=e.get("intent"), facts=tuple(e.get("facts", ())),
                        eligible=e.get("eligible"), days=e.get("days"), payer=e.get("payer"))
    return ScoreContext(row["lang"], expected, tuple(row.get("labels", ())))


def test_validation_covers_every_language_and_case() -> None:
    per_lang = Counter(r["lang"] for r in ROWS)
    assert set(per_lang) == set(LANGUAGES)
    assert min(per_lang.values()) >= 5
    for lang in LANGUAGES:
        cases = {r["case"] for r in ROWS if r["lang"] == lang}
        assert {"correct", "wrong_fact", "deflection", "wrong_language"} <= cases, lang
        assert len(cases) >= 5, lang
    assert all(set(r["scores"]) == set(SCORERS) for r in ROWS)


@pytest.mark.parametrize("row", ROWS, ids=[r["id"] for r in ROWS])
def test_scorers_agree_with_hand_labels(row: dict) -> None:
    ctx = _context(row)
    got = {name: SCORERS[name](row["answer"], ctx) for name in row["scores"]}
    wrong = {n: (row["scores"][n], s.passed, s.detail) for n, s in got.items()
             if s.passed != row["scores"][n]}
    assert not wrong, wrong


@pytest.mark.parametrize("text, expected", [
    ("١٤٫٩٠", "14.90"),            # Arabic-Indic digits, Arabic decimal separator
    ("۱۴٫۹۰", "14.90"),            # Persian (extended Arabic-Indic)
    ("１４．９０", "14.90"),         # full-width
    ("๑๔.๙๐", "14.90"),            # Thai
    ("१४.९०", "14.90"),            # Devanagari
    ("১৪.৯০", "14.90"),            # Bengali
    ("14,90", "14.90"),            # decimal comma
    ("7–12", "7-12"), ("7 ～ 12", "7-12"), ("３〜５", "3-5"),
])
def test_digit_normalisation(text: str, expected: str) -> None:
    assert normalize(text) == expected


def test_ascii_digits_keeps_other_characters() -> None:
    assert ascii_digits("الطلب ١٢٣ و abc") == "الطلب 123 و abc"


@pytest.mark.parametrize("answer, fact, found", [
    ("within 7 days", "7", True), ("within 17 days", "7", False), ("14.70 EUR", "7", False),
    ("08:00-20:00 UTC", "8", True), ("pay with paypal", "PayPal", True),
    ("ภายใน ๗-๑๒ วัน", "7-12", True), ("within 7-12 days", "12", True),
])
def test_facts_match_whole_numbers(answer: str, fact: str, found: bool) -> None:
    ctx = ScoreContext("en", Expected(facts=(fact,)))
    assert facts(answer, ctx).passed is found


def test_verdict_field_by_field() -> None:
    ctx = ScoreContext("en", Expected(eligible=False, days=30))
    assert verdict('ok {"eligible": false, "days": 30}', ctx).passed is True
    res = verdict('{"eligible": true, "days": 30}', ctx)
    assert res.passed is False and "eligible" in res.detail and "days" not in res.detail
    assert verdict("no json at all", ctx).passed is False
    assert verdict("x", ScoreContext("en", Expected())).passed is None


def test_last_json_object_takes_the_last_top_level_object() -> None:
    assert last_json_object('{"a": 1} text {"eligible": true, "x": {"days": 3}}') == \
        {"eligible": True, "x": {"days": 3}}
    assert last_json_object("{not json") is None


def test_find_label_prefers_first_mentioned() -> None:
    labels = ("order_tracking", "cancel_order")
    assert find_label("Cancel Order, not order tracking", labels) == "cancel_order"
    assert find_label("`order_tracking`", labels) == "order_tracking"
    assert find_label("nothing", labels) is None


def test_unknown_scorer_suggests_a_name() -> None:
    with pytest.raises(UnknownNameError, match="Did you mean 'facts'"):
        get_scorer("factz")
