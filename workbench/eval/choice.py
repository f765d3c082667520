"""Multiple-choice scoring of eval items by log-likelihood, through the engine.

Every label's choice text is scored after the item's prompt (``Backend.loglik``); the item
gets two scores next to its generation scores: ``loglik`` (the choice with the highest summed
log-probability is the expected label: ``acc``) and ``loglik_norm`` (highest per token:
``acc_norm``). Neither counts towards resolution, which stays a property of the answer.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol

from workbench.backends.base import Backend
from workbench.engine.loglik import ChoiceItem, ChoiceScores
from workbench.eval.schema import EvalItem, Score

if TYPE_CHECKING:
    from workbench.eval.suite import Suite

log = logging.getLogger(__name__)
# Items per trip to the engine's worker: small enough that chat turns waiting behind an
# eval run are served between trips.
ITEMS_PER_CALL = 8

Key = tuple[str, str, str]  # (suite, item id, variant)


class Work(Protocol):
    suite: "Suite"
    item: EvalItem
    variant: str


def choice_scores(backend: Backend, work: Sequence[Work],
                  progress: Callable[[int, int], None] | None = None) -> dict[Key, dict[str, Score]]:
    """Log-likelihood scores of every multiple-choice work item, keyed by (suite, item, variant)."""
    if not backend.capabilities.loglik:  # a remote server: no prompt log-probs here
        log.info("the backend gives no prompt log-probabilities: choice scores skipped")
        return {}
    todo = [w for w in work if w.suite.options.multiple_choice and w.item.expected.intent]
    out: dict[Key, dict[str, Score]] = {}
    done = 0
    for chunk in _calls(todo):
        items = [ChoiceItem(w.suite.choice_messages(w.item), w.suite.options.choices, w.variant)
                 for w in chunk]
        results = backend.loglik(items)
        for w, res in zip(chunk, results):
            out[(w.suite.name, w.item.id, w.variant)] = item_scores(w.suite.labels, w.item, res)
        done += len(chunk)
        if progress is not None:
            progress(done, len(todo))
    if todo:
        log.info("scored %d multiple-choice items by log-likelihood", len(todo))
    return out


def _calls(todo: Sequence[Work]) -> list[list[Work]]:
    """Trips of at most ``ITEMS_PER_CALL`` items of one suite, variant and language: their
    prompts then share the system prompt and the language's few-shot examples, computed once."""
    groups: dict[tuple[str, str, str], list[Work]] = {}
    for w in todo:
        groups.setdefault((w.suite.name, w.variant, w.item.lang), []).append(w)
    return [g[at:at + ITEMS_PER_CALL] for g in groups.values()
            for at in range(0, len(g), ITEMS_PER_CALL)]


def item_scores(labels: tuple[str, ...], item: EvalItem, res: ChoiceScores) -> dict[str, Score]:
    """The ``loglik`` and ``loglik_norm`` scores of one item from its choices' log-probs."""
    expected = item.expected.intent
    gold = labels.index(expected) if expected in labels else None
    out = {}
    for name, pick, value in (
            ("loglik", res.best, lambda i: res.logprobs[i]),
            ("loglik_norm", res.best_norm, lambda i: res.logprobs[i] / res.n_tokens[i])):
        detail = f"chose {labels[pick]} ({value(pick):.3f})"
        if gold is not None and gold != pick:
            detail += f", expected {expected} ({value(gold):.3f})"
        out[name] = Score(None if gold is None else pick == gold, detail, labels[pick])
    return out
