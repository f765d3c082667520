"""Reuse of attention keys/values for shared prompt prefixes (the system message).

Grounded prompts repeat one long system message: every item of a FAQ-grounded suite carries
the whole store FAQ, every chat turn in a region carries that region's policy. Its keys and
values depend only on its tokens and the adapter, so they are computed once, kept in a
bounded LRU, and copied into each batch that starts with it; ``generate`` then runs the
forward pass over the rest of each prompt only.

Row layout of a prefixed batch (P = longest cached prefix, S = longest rest)::

    [ prefix_i | pad to P | left pad | rest_i ]      attention mask 0 on every pad

``generate`` derives position ids from the mask's running sum, so holes in the mask keep
every real token at the position it would have without the cache.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import torch
from transformers import DynamicCache, PretrainedConfig

# Per layer: (keys, values), each [1, H_kv, P, D].
LayerKV = list[tuple[torch.Tensor, torch.Tensor]]


@dataclass(frozen=True)
class PromptIds:
    """One row's templated prompt, split where its cacheable prefix ends."""

    # Token ids of the whole prompt.
    ids: list[int]
    # How many leading ids form the system-message prefix (0: nothing to reuse).
    prefix_len: int
    # Adapter the row runs with; the prefix's keys/values depend on it.
    adapter_key: str

    @property
    def prefix(self) -> tuple[int, ...]:
        return tuple(self.ids[:self.prefix_len])


@dataclass
class PrefixStats:
    """Counters of the prefix cache (reused tokens are counted per request, in its metrics)."""

    # Rows whose prefix was found in the cache.
    hits: int = 0
    # Rows whose prefix had to be computed.
    misses: int = 0
    # Entries dropped to stay under the memory budget.
    evictions: int = 0


class PrefixCache:
    """LRU of prefix keys/values per (adapter, prefix tokens), bounded in bytes."""

    def __init__(self, budget_mb: float, min_tokens: int) -> None:
        self.budget_bytes = int(budget_mb * 1024 * 1024)
        self.min_tokens = min_tokens
        self.stats = PrefixStats()
        self._entries: OrderedDict[tuple[str, tuple[int, ...]], LayerKV] = OrderedDict()
        self._bytes = 0

    @property
    def enabled(self) -> bool:
        return self.budget_bytes > 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def nbytes(self) -> int:
        return self._bytes

    def get(self, row: PromptIds) -> LayerKV | None:
        key = (row.adapter_key, row.prefix)
        kv = self._entries.get(key)
        if kv is None:
            self.stats.misses += 1
            return None
        self._entries.move_to_end(key)
        self.stats.hits += 1
        return kv

    def put(self, row: PromptIds, kv: LayerKV) -> None:
        size = sum(k.nbytes + v.nbytes for k, v in kv)
        if size > self.budget_bytes:
            return  # one prefix larger than the whole budget: not worth keeping
        key = (row.adapter_key, row.prefix)
        if key in self._entries:
            return
        self._entries[key] = kv
        self._bytes += size
        while self._bytes > self.budget_bytes:
            _, old = self._entries.popitem(last=False)
            self._bytes -= sum(k.nbytes + v.nbytes for k, v in old)
            self.stats.evictions += 1

    def clear(self) -> None:
        """Forget every entry; called whenever the served adapters change."""
        self._entries.clear()
        self._bytes = 0


def common_prefix_len(a: list[int], b: list[int]) -> int:
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n


def cache_layers(past: object) -> LayerKV:
    """(keys, values) per layer out of a model's returned cache."""
    return [(layer.keys, layer.values) for layer in past.layers]


def pack_rows(heads: list[list[int]], tails: list[list[int]], pad_id: int,
              device: str) -> tuple[torch.Tensor, torch.Tensor]:
    """ids, mask [B, P+S]: each head left-aligned in the first P columns, each tail
    right-aligned in the last S, mask 0 on every pad. Empty heads give plain left padding."""
    P, S = max(map(len, heads)), max(map(len, tails))
    ids = torch.full((len(tails), P + S), pad_id, dtype=torch.long)  # [B, P+S]
    mask = torch.zeros((len(tails), P + S), dtype=torch.long)  # [B, P+S]
    for b, (head, tail) in enumerate(zip(heads, tails)):
        ids[b, :len(head)] = torch.tensor(head, dtype=torch.long)
        mask[b, :len(head)] = 1
        ids[b, P + S - len(tail):] = torch.tensor(tail, dtype=torch.long)
        mask[b, P + S - len(tail):] = 1
    return ids.to(device), mask.to(device)


def build_batch(rows: list[PromptIds], kvs: list[LayerKV | None], pad_id: int,
                config: PretrainedConfig, device: str) -> dict[str, object]:
    """Model inputs for ``generate``: ids and mask [B, P+S] and a cache of [B, H, P, D]."""
    lens = [r.prefix_len if kv is not None else 0 for r, kv in zip(rows, kvs)]
    ids, mask = pack_rows([r.ids[:n] for r, n in zip(rows, lens)],
                          [r.ids[n:] for r, n in zip(rows, lens)], pad_id, device)
    cache = DynamicCache(config=config)
    for layer, batch_kv in enumerate(_stack_layers(kvs, lens, max(lens))):
        cache.update(*batch_kv, layer)
    return {"input_ids": ids, "attention_mask": mask, "past_key_values": cache}


def _stack_layers(kvs: list[LayerKV | None], lens: list[int], P: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    ref = next(kv for kv in kvs if kv is not None)
    out = []
    for layer, (k0, v0) in enumerate(ref):
        keys = k0.new_zeros((len(kvs), k0.shape[1], P, k0.shape[3]))  # [B, H, P, D]
        values = v0.new_zeros((len(kvs), v0.shape[1], P, v0.shape[3]))  # [B, H, P, Dv]
        for b, (kv, n) in enumerate(zip(kvs, lens)):
            if kv is not None and n:
                keys[b, :, :n] = kv[layer][0][0, :, :n]
                values[b, :, :n] = kv[layer][1][0, :, :n]
        out.append((keys, values))
    return out
