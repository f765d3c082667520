"""Reuse of attention keys/values for shared prompt prefixes (the system message).

Grounded prompts repeat one long system message: every item of a FAQ-grounded suite carries
the whole store FAQ, every chat turn in a region carries that region's policy. Its keys and
values depend only on its tokens and the adapter, so they are kept in a bounded LRU keyed by
(adapter, prefix ids). When a row is admitted its prefix is copied into the row's slot of
the prefill group's cache and only the rest of the prompt runs through the model; a row
whose prefix is not cached is prefilled whole, and its prefix's keys/values are stored from
that prefill (no extra forward pass).

Row layout of a prefill group (P = longest cached prefix, S = longest rest)::

    [ prefix_i | pad to P | left pad | rest_i ]      attention mask 0 on every pad

Position ids come from the mask's running sum, so holes in the mask keep every real token at
the position it would have without the cache.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from transformers import PretrainedConfig

from workbench.engine.packing import LayerKV, new_cache, pack_rows, stack_prefixes


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
        # One row's prefix per entry: keys and values of [1, H_kv, P, D] per layer.
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


def build_batch(rows: list[PromptIds], kvs: list[LayerKV | None], pad_id: int,
                config: PretrainedConfig, device: str) -> dict[str, object]:
    """Inputs for one ``generate`` over whole rows (the static-batching baseline):
    ids and mask [B, P+S] and a cache of [B, H, P, D] holding the cached prefixes."""
    lens = [r.prefix_len if kv is not None else 0 for r, kv in zip(rows, kvs)]
    ids, mask = pack_rows([r.ids[:n] for r, n in zip(rows, lens)],
                          [r.ids[n:] for r, n in zip(rows, lens)], pad_id, device)
    layers = stack_prefixes(kvs, lens) if any(lens) else None
    return {"input_ids": ids, "attention_mask": mask, "past_key_values": new_cache(config, layers)}
