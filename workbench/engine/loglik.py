"""Multiple-choice scoring by log-likelihood: prefill only, batched, one adapter per row.

For each item (chat messages + candidate continuations) every choice gets the summed
log-probability of its tokens after the templated prompt, and its token count (for
``acc_norm``, which divides by tokens rather than characters, fair across scripts).

Two passes per chunk of items, so a prompt is computed once however many choices it has:

    prompts  [B, T]  left-padded  -> keys/values + the first choice token's log-probs
                     (a start all prompts share, such as few-shot examples, runs once and
                     is kept in the engine's prefix cache for the next chunks)
    choices  [R, C]  right-padded -> the rest, on the prompt's keys/values copied per choice

Rows of one pass may use different adapters: every forward goes through the runner's one
LoRA routing (``ModelRunner.forward``). Must run on the engine's worker thread (it uses the
served model directly)::

    engine.call_between_batches(lambda: loglik.score(engine.runner, items))
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from workbench.engine.packing import layers_of, new_cache, positions_of
from workbench.engine.prefix import PromptIds
from workbench.engine.prompt import common_prefix_len
from workbench.engine.request import BASE_ADAPTER
from workbench.errors import InputError


# Shortest shared prompt start worth computing once for a chunk.
MIN_SHARED_PREFIX = 32
# Prompt tokens summed over a chunk's choice rows. Every row gets its own copy of its prompt's
# keys/values for the choice pass (46 KB a token on SmolLM2): 48 rows of a 550-token few-shot
# prompt are about 1.2 GB, and the app's peak went to 2.8 GB; 8,192 row-tokens are ~0.4 GB.
MAX_ROW_TOKENS = 8192
# Prompt tokens of the keys/values copied for one group of choice rows in the second pass.
COPY_ROW_TOKENS = 2048


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


def score(runner: Any, items: Sequence[ChoiceItem], max_rows: int = 48,
          max_row_tokens: int = MAX_ROW_TOKENS) -> list[ChoiceScores]:
    """Score every item's choices; ``max_rows`` caps choice rows per forward pass and
    ``max_row_tokens`` their prompt tokens (each choice row holds its own copy of the prompt's
    keys/values), so long prompts go in smaller chunks (at least one item each).

    Items are grouped by adapter, so a chunk's prompts can share one computed prefix."""
    tok = runner.loaded.tokenizer
    enc = [_encode(tok, it, _window(runner)) for it in items]
    order = sorted(range(len(enc)), key=lambda i: enc[i].adapter)
    shared = _shared_prefixes(runner, enc)
    scored: list[ChoiceScores] = []
    with torch.inference_mode():
        for chunk in _chunks([enc[i] for i in order], max_rows, max_row_tokens):
            scored.extend(_score_chunk(runner, chunk, shared.get(chunk[0].adapter, 0)))
    out: list[ChoiceScores | None] = [None] * len(enc)
    for i, res in zip(order, scored):
        out[i] = res
    return out  # type: ignore[return-value]


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


def _chunks(enc: list[_Encoded], max_rows: int, max_row_tokens: int) -> Iterator[list[_Encoded]]:
    chunk: list[_Encoded] = []
    rows = tokens = 0
    for e in enc:
        cost = len(e.choices) * len(e.prompt)
        if chunk and (rows + len(e.choices) > max_rows or tokens + cost > max_row_tokens):
            yield chunk
            chunk, rows, tokens = [], 0, 0
        chunk.append(e)
        rows += len(e.choices)
        tokens += cost
    if chunk:
        yield chunk


def _shared_prefixes(runner: Any, enc: list[_Encoded]) -> dict[str, int]:
    """Per adapter, the leading ids all of its prompts in this call share (few-shot examples,
    a system prompt); 0 where nothing is worth reusing. Taken over the whole call, not a
    chunk: a one-item chunk would otherwise cache its whole prompt as a "prefix"."""
    if getattr(runner, "prefix_kv", None) is None:
        return {}
    out: dict[str, int] = {}
    for adapter in {e.adapter for e in enc}:
        prompts = [e.prompt for e in enc if e.adapter == adapter]
        n = min(len(p) for p in prompts) - 1  # one id of each prompt is left to run
        for p in prompts[1:]:
            n = min(n, common_prefix_len(prompts[0], p))
        out[adapter] = n if n >= MIN_SHARED_PREFIX and len(prompts) > 1 else 0
    return out


def _prompt_pass(runner: Any, chunk: list[_Encoded], P: int) -> tuple[Any, torch.Tensor, Any]:
    """(forward output, mask [B, T], cache) of the prompts; their shared first ``P`` ids
    (few-shot examples, system prompt) are computed once, or taken from the prefix cache."""
    device, pad = runner.loaded.device, runner.loaded.tokenizer.pad_token_id or 0
    keys = [e.adapter for e in chunk]
    ids, mask = _left_pad([e.prompt[P:] for e in chunk], pad, device)  # [B, T-P]
    cache = None
    if P:
        kv = runner.prefix_kv(PromptIds(chunk[0].prompt, P, keys[0]))  # [1, H, P, D] per layer
        B = len(chunk)
        cache = new_cache(runner.model.config, [(k.expand(B, -1, -1, -1), v.expand(B, -1, -1, -1))
                                                for k, v in kv])
        mask = torch.cat([mask.new_ones((B, P)), mask], dim=1)  # [B, T]: prefix | pads | rest
    pos = positions_of(mask)[:, P:]  # [B, T-P]
    first = runner.forward(keys, input_ids=ids, attention_mask=mask, position_ids=pos, cache=cache,
                           use_cache=True, logits_to_keep=1)
    out_cache = getattr(first, "cache", None) or first.past_key_values  # transformers 5: ``cache``
    return first, mask, out_cache


def _score_chunk(runner: Any, chunk: list[_Encoded], shared: int = 0) -> list[ChoiceScores]:
    pad = runner.loaded.tokenizer.pad_token_id or 0
    keys = [e.adapter for e in chunk]
    first, mask, cache = _prompt_pass(runner, chunk, shared)
    first_lp = torch.log_softmax(first.logits[:, -1].float(), dim=-1)  # [B, V]
    owner = [i for i, e in enumerate(chunk) for _ in e.choices]  # row -> item, [R]
    rows = [c for e in chunk for c in e.choices]
    total = [float(first_lp[i, r[0]]) for i, r in zip(owner, rows)]
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
    """Log-probs of every choice token after the first, on the prompts' keys/values.

    Each choice row needs its own copy of its prompt's keys/values, so rows go in groups
    whose copies stay under ``COPY_ROW_TOKENS`` prompt tokens (a 550-token prompt: 3 rows)."""
    group = max(1, COPY_ROW_TOKENS // prompt_mask.shape[1])
    layers = layers_of(cache)
    out: list[float] = []
    for at in range(0, len(rows), group):
        sel = list(range(at, min(at + group, len(rows))))
        out += _rest_group(runner, layers, prompt_mask, [owner[j] for j in sel],
                           [rows[j] for j in sel], pad, item_keys)
    return out


def _rest_group(runner: Any, layers: list, prompt_mask: torch.Tensor, owner: list[int],
                rows: list[list[int]], pad: int, item_keys: list[str]) -> list[float]:
    width = max(len(r) for r in rows) - 1
    if width == 0:  # one-token choices: the prompt pass scored them whole
        return [0.0] * len(rows)
    device = prompt_mask.device
    idx = torch.tensor(owner, device=device)
    # One copy of its prompt's keys/values per choice row: [R, H, T, D] per layer.
    cache = new_cache(runner.model.config, [(k[idx], v[idx]) for k, v in layers])
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
    logits = runner.forward([item_keys[i] for i in owner], input_ids=inp, attention_mask=mask,
                            position_ids=pos, cache=cache, use_cache=True).logits
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
