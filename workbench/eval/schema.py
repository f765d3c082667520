"""The eval data that crosses module boundaries: an item, what it expects, what a scorer sees.

Kept apart from ``suite.py`` so scorers can use these types without importing the loader
(which itself imports the scorer registry to validate names).
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Expected:
    """The reference answer of one item; a field left None does not apply to the item."""

    # Intent label a classifier should answer (classification suites).
    intent: str | None = None
    # Strings that must appear in the answer, compared after digit/case normalisation.
    facts: tuple[str, ...] = ()
    # Whether the return request is eligible (verdict suites).
    eligible: bool | None = None
    # The return window in days the answer's JSON must state (verdict suites).
    days: int | None = None
    # Who pays return shipping, "customer" or "store" (kept for reports; not scored).
    payer: str | None = None

    def as_dict(self) -> dict:
        """The non-empty fields, for storing as JSON."""
        out: dict = {}
        for key in ("intent", "eligible", "days", "payer"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        if self.facts:
            out["facts"] = list(self.facts)
        return out


@dataclass(frozen=True)
class EvalItem:
    """One line of a suite's items.jsonl, validated."""

    # Unique id inside its suite.
    id: str
    # Customer language code (one of workbench.domain.langs.LANGUAGES).
    lang: str
    # The customer's message.
    text: str
    # Delivery region code, or None when the item has none.
    region: str | None
    # The reference answer.
    expected: Expected
    # 1-based line in items.jsonl, for error messages and reports.
    line: int = 0
    # Id shared by the phrasings of one question (paraphrase consistency), None when alone.
    group: str | None = None


@dataclass(frozen=True)
class ScoreContext:
    """Everything a scorer may look at besides the answer."""

    # Customer language code.
    lang: str
    # The item's reference answer.
    expected: Expected
    # The suite's labels (classification), empty otherwise.
    labels: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class Score:
    """One scorer's verdict on one answer."""

    # True/False, or None when the check does not apply to this item or cannot be told.
    passed: bool | None
    # Why, in a few words (shown in reports and the CSV export).
    detail: str = ""
    # What the scorer read from the answer (e.g. the predicted label), for macro-F1 and diffs.
    prediction: str | None = None
