"""Rows laid out for one forward pass: ids packed around holes, their positions, and the
keys/values of cached prefixes, as prefill, log-likelihood and the static baseline need.

A row's layout may hold holes (left padding, or the gap after a cached system prompt); the
mask is 0 there and position ids are counted over real tokens only, so a hole never shifts a
real token's position. The running batch keeps this layout in its pool (``slots.py``).
"""
from __future__ import annotations

import torch
from transformers import DynamicCache, PretrainedConfig

# Per layer: (keys, values), each [B, H_kv, L, D].
LayerKV = list[tuple[torch.Tensor, torch.Tensor]]


def positions_of(mask: torch.Tensor) -> torch.Tensor:
    """Position ids [B, L] from a mask with holes: a real token's count of real tokens before it."""
    return (mask.cumsum(-1) - 1).clamp(min=0)


def new_cache(config: PretrainedConfig, layers: LayerKV | None = None) -> DynamicCache:
    """A transformers cache holding ``layers`` (a prefill or a scoring pass appends to it)."""
    cache = DynamicCache(config=config)
    for i, (k, v) in enumerate(layers or []):
        cache.update(k, v, i)
    return cache


def layers_of(cache: DynamicCache) -> LayerKV:
    return [(layer.keys, layer.values) for layer in cache.layers]


def stack_prefixes(kvs: list[LayerKV | None], lens: list[int]) -> LayerKV:
    """Cached prefixes of a group's rows as [B, H, P, D] per layer, each left-aligned."""
    ref = next(kv for kv in kvs if kv is not None)
    P = max(lens)
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


def pack_rows(heads: list[list[int]], tails: list[list[int]], pad_id: int,
              device: str | torch.device) -> tuple[torch.Tensor, torch.Tensor]:
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
