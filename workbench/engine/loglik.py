"""Multiple-choice scoring by log-likelihood: prefill only, batched, one adapter per row.

For each item (chat messages + candidate continuations) every choice gets the summed
log-probability of its tokens after the templated prompt, and its token count (for
``acc_norm``, which divides by tokens rather than characters, fair across scripts).

Two passes per chunk of items, so a prompt is computed once however many choices it has:

    prompts  [B, T]  left-padded  -> keys/values + the first choice token's log-probs
    choices  [R, C]  right-padded -> the rest, on the prompt's keys/values copied per choice

Must run on the engine's worker thread (it uses the served model directly)::

    engine.call_between_batches(lambda: loglik.score(engine.runner, items))
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from workbench.engine.request import BASE_ADAPTER
from workbench.errors import InputError


@dataclass(frozen=True)
class ChoiceItem:
    """One question and its candidate answers, for one variant."""

    # Chat messages of the prompt; the choices continue after the assistant's turn opens.
    messages: list[dict[str, str]]
    # Candidate continuations, e.g. the suite's labels.
    choices: tuple[str, ...]
    # "__base__" or a loaded adapter's name.
    adapter: str = BASE_ADAPTER


@dataclass(frozen=True)
class ChoiceScores:
    """Per choice: summed log-probability and token count, in the item's choice order."""

    logprobs: tuple[float, ...]
    n_tokens: tuple[int, ...]

    @property
    def best(self) -> int:
        """Index of the choice with the highest summed log-probability (``acc``)."""
        return max(range(len(self.logprobs)), key=lambda i: self.logprobs[i])

    @property
    def best_norm(self) -> int:
        """Index of the highest log-probability per token (``acc_norm``)."""
        return max(range(len(self.logprobs)), key=lambda i: self.logprobs[i] / self.n_tokens[i])


@dataclass(frozen=True)
class _Encoded:
    prompt: list[int]
    choices: list[list[int]]
    adapter: str


def score(runner: Any, items: Sequence[ChoiceItem], max_rows: int = 48) -> list[ChoiceScores]:
    """Score every item's choices; ``max_rows`` caps choice rows per forward pass."""
    tok = runner.loaded.tokenizer
    enc = [_encode(tok, it, _window(runner)) for it in items]
    out: list[ChoiceScores] = []
    with torch.inference_mode():
        for chunk in _chunks(enc, max_rows):
            out.extend(_score_chunk(runner, chunk))
    return out


def _window(runner: Any) -> int:
    return int(getattr(runner.loaded.model.config, "max_position_embeddings", 0) or 10**6)


def _encode(tok: Any, item: ChoiceItem, window: int) -> _Encoded:
    if not item.choices:
        raise InputError("A multiple-choice item needs at least one choice.")
    text = tok.apply_chat_template(item.messages, add_generation_prompt=True, tokenize=False)
    prompt = tok(text, add_special_tokens=False)["input_ids"]
    choices = [_continuation(tok, text, prompt, c) for c in item.choices]
    budget = window - max(len(c) for c in choices)
    if budget < 1:
        raise InputError("A choice is longer than the model's context window.")
    return _Encoded(prompt[-budget:], choices, item.adapter or BASE_ADAPTER)


def _continuation(tok: Any, text: str, prompt: list[int], choice: str) -> list[int]:
    """The choice's tokens as the model would see them after the prompt (lm-eval's split:
    encode prompt + choice together, keep what follows the prompt's tokens)."""
    whole = tok(text + choice, add_special_tokens=False)["input_ids"]
    ids = whole[len(prompt):] if whole[:len(prompt)] == prompt else \
        tok(choice, add_special_tokens=False)["input_ids"]
    if not ids:
        raise InputError(f"The choice {choice!r} encodes to no tokens.")
    return ids


def _chunks(enc: list[_Encoded], max_rows: int) -> Iterator[list[_Encoded]]:
    chunk: list[_Encoded] = []
    rows = 0
    for e in enc:
        if chunk and rows + len(e.choices) > max_rows:
            yield chunk
            chunk, rows = [], 0
        chunk.append(e)
        rows += len(e.choices)
    if chunk:
        yield chunk


def _score_chunk(runner: Any, chunk: list[_Encoded]) -> list[ChoiceScores]:
    device, pad = runner.loaded.device, runner.loaded.tokenizer.pad_token_id or 0
    ids, mask = _left_pad([e.prompt for e in chunk], pad, device)  # [B, T] each
    pos = (mask.cumsum(-1) - 1).clamp(min=0)  # [B, T]
    keys = [e.adapter for e in chunk]
    with _adapters(runner, keys) as extra:
        first = runner.model(input_ids=ids, attention_mask=mask, position_ids=pos,
                             use_cache=True, logits_to_keep=1, **extra)
    first_lp = torch.log_softmax(first.logits[:, -1].float(), dim=-1)  # [B, V]
    owner = [i for i, e in enumerate(chunk) for _ in e.choices]  # row -> item, [R]
    rows = [c for e in chunk for c in e.choices]
    total = [float(first_lp[i, r[0]]) for i, r in zip(owner, rows)]
    cache = getattr(first, "cache", None) or first.past_key_values  # transformers 5: ``cache``
    rest = _rest_logprobs(runner, cache, mask, owner, rows, pad, keys)
    total = [t + r for t, r in zip(total, rest)]
    out, at = [], 0
    for e in chunk:
        n = len(e.choices)
        out.append(ChoiceScores(tuple(total[at:at + n]), tuple(len(c) for c in e.choices)))
        at += n
    return out


def _rest_logprobs(runner: Any, cache: Any, prompt_mask: torch.Tensor, owner: list[int],
                   rows: list[list[int]], pad: int, item_keys: list[str]) -> list[float]:
    """Log-probs of every choice token after the first, on the prompts' keys/values."""
    width = max(len(r) for r in rows) - 1
    if width == 0:
        return [0.0] * len(rows)
    device = prompt_mask.device
    idx = torch.tensor(owner, device=device)
    cache.batch_select_indices(idx)  # one copy of its prompt's keys/values per choice row
    inp = torch.full((len(rows), width), pad, dtype=torch.long, device=device)  # [R, C-1]
    tgt = torch.full((len(rows), width), -1, dtype=torch.long, device=device)  # [R, C-1]
    for j, r in enumerate(rows):
        inp[j, :len(r) - 1] = torch.tensor(r[:-1])
        tgt[j, :len(r) - 1] = torch.tensor(r[1:])
    live = (tgt >= 0).long()
    # A row's own pad tokens sit after its last real one, so causality keeps them out of it.
    mask = torch.cat([prompt_mask[idx], torch.ones_like(live)], dim=1)  # [R, T + C-1]
    start = prompt_mask.sum(-1)[idx].unsqueeze(1)  # [R, 1]
    pos = start + torch.arange(width, device=device).unsqueeze(0)  # [R, C-1]
    with _adapters(runner, [item_keys[i] for i in owner]) as extra:
        logits = runner.model(input_ids=inp, attention_mask=mask, position_ids=pos,
                              cache=cache, use_cache=True, **extra).logits
    lp = torch.log_softmax(logits.float(), dim=-1)  # [R, C-1, V]
    picked = lp.gather(-1, tgt.clamp(min=0).unsqueeze(-1)).squeeze(-1) * live  # [R, C-1]
    return picked.sum(-1).tolist()


def _left_pad(seqs: list[list[int]], pad: int, device: str) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, width - len(s):] = torch.tensor(s)
        mask[i, width - len(s):] = 1
    return ids.to(device), mask.to(device)


@contextlib.contextmanager
def _adapters(runner: Any, keys: list[str]) -> Iterator[dict[str, object]]:
    """The forward's extra arguments for per-row adapters (none when the base is bare)."""
    model = runner.model
    if not hasattr(model, "peft_config"):
        unknown = sorted({k for k in keys if k != BASE_ADAPTER})
        if unknown:
            raise InputError(f"Adapter {unknown[0]!r} is not loaded.")
        yield {}
    elif all(k == BASE_ADAPTER for k in keys):
        with model.disable_adapter():
            yield {}
    else:
        if getattr(runner.loaded, "is_awq", False):
            from workbench.models.awq import enable_awq_mixed_batches

            enable_awq_mixed_batches()
        loaded = set(model.peft_config)
        unknown = sorted({k for k in keys if k != BASE_ADAPTER and k not in loaded})
        if unknown:
            raise InputError(f"Adapter {unknown[0]!r} is not loaded.")
        yield {"adapter_names": keys}
