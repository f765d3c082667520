"""Per-row sampling: every row of a step has its own settings, generator and grammar.

One step's logits [B, V] hold chat rows (repetition penalty, maybe temperature), eval rows
(greedy) and constrained rows side by side. What all rows share runs once for the batch: EOS
masked for every ``ignore_eos`` row in one indexed write, greedy argmax for every row at once.
What is a row's own runs per row, and only for rows that have it: repetition penalty over
the row's prompt and output ids (as transformers applies it), the row's grammar mask, and
temperature/top-p sampling with the row's own ``torch.Generator``. A
row's seed is its own (``SamplingParams.seed``, or a fresh one per request), so sampled
rows never depend on their neighbours or on a process-wide seed.
"""
from __future__ import annotations

import secrets
from typing import Protocol

import torch

from workbench.engine.request import SamplingParams, StructuredOutput
from workbench.errors import WorkbenchError


class RowConstraint(Protocol):
    """What ``grammar.compile_constraint`` returns: a per-row token mask that advances."""

    def mask_logits(self, logits: torch.Tensor) -> None: ...  # logits: [V], in place

    def accept(self, token_id: int) -> None: ...

    def is_finished(self) -> bool: ...


def compile_constraint(spec: StructuredOutput, tokenizer: object, vocab_size: int) -> RowConstraint:
    """The row's grammar; the grammar module is imported only when a request needs one."""
    try:
        from workbench.engine.grammar import compile_constraint as compile_spec
    except ImportError as exc:
        raise WorkbenchError(f"Structured output is not available here: {exc}") from exc
    return compile_spec(spec, tokenizer, vocab_size)


class RowSampler:
    """Chooses one row's next token each step."""

    def __init__(self, params: SamplingParams, prompt_ids: list[int], eos_ids: set[int],
                 constraint: RowConstraint | None, device: torch.device | str) -> None:
        self.params = params
        self.constraint = constraint
        self.seen = set(prompt_ids) if params.repetition_penalty != 1.0 else set()
        self.eos = sorted(eos_ids) if params.ignore_eos else []
        self.generator: torch.Generator | None = None
        if not params.greedy:
            seed = params.seed if params.seed is not None else secrets.randbits(63)
            self.generator = torch.Generator(device=device).manual_seed(seed)

    @property
    def greedy(self) -> bool:
        return self.params.greedy

    @property
    def has_own_processing(self) -> bool:
        return (self.params.repetition_penalty != 1.0 and bool(self.seen)) or self.constraint is not None

    def process(self, logits: torch.Tensor) -> None:
        """Penalty and grammar mask on this row's logits [V], in place (EOS is masked for
        the whole batch by ``sample_rows``)."""
        p = self.params.repetition_penalty
        if p != 1.0 and self.seen:
            idx = torch.tensor(sorted(self.seen), device=logits.device)  # [K]
            score = logits[idx]
            logits[idx] = torch.where(score < 0, score * p, score / p)
        if self.constraint is not None:
            self.constraint.mask_logits(logits)

    def draw(self, logits: torch.Tensor) -> int:
        """Temperature and top-p sampling from this row's logits [V] with its generator."""
        scores = logits / max(self.params.temperature, 1e-5)
        top_p = self.params.top_p
        if top_p < 1.0:
            sorted_scores, order = torch.sort(scores, descending=False)  # [V]
            cum = sorted_scores.softmax(-1).cumsum(-1)
            drop = cum <= 1 - top_p
            drop[-1] = False  # keep at least the most likely token
            scores = scores.scatter(0, order, sorted_scores.masked_fill(drop, float("-inf")))
        probs = scores.softmax(-1)
        return int(torch.multinomial(probs, 1, generator=self.generator))

    def accept(self, token_id: int) -> None:
        if self.params.repetition_penalty != 1.0:
            self.seen.add(token_id)
        if self.constraint is not None:
            self.constraint.accept(token_id)


def sample_rows(logits: torch.Tensor, samplers: list[RowSampler]) -> list[int]:
    """One token per row from a step's last-position logits [B, V]."""
    logits = logits.float()
    _mask_eos(logits, samplers)
    for b, s in enumerate(samplers):
        if s.has_own_processing:
            s.process(logits[b])
    picks = logits.argmax(-1).tolist()  # [B]: greedy rows' tokens
    for b, s in enumerate(samplers):
        if not s.greedy:
            picks[b] = s.draw(logits[b])
    return picks


def _mask_eos(logits: torch.Tensor, samplers: list[RowSampler]) -> None:
    """EOS ids to -inf on every ``ignore_eos`` row of logits [B, V], one write per EOS set."""
    groups: dict[tuple[int, ...], list[int]] = {}
    for b, s in enumerate(samplers):
        if s.eos:
            groups.setdefault(tuple(s.eos), []).append(b)
    for eos, rows in groups.items():
        r = torch.tensor(rows, device=logits.device)[:, None]  # [R, 1]
        e = torch.tensor(eos, device=logits.device)[None, :]  # [1, E]
        logits[r, e] = float("-inf")
