"""The running batch's keys/values: one cache [B, H, L, D] whose rows come and go.

Why this layout: rows of one step must share one forward call (that is what makes a step
cheap), and each row may use another adapter, which rules out transformers' own continuous
batching (one active adapter for all requests). A per-row cache right-aligned at a shared
write position keeps the forward a plain batched decode: every row's next token is written
at column L, older columns are the row's own history or masked holes (left padding, or the
gap after a cached system prompt). Position ids are passed per row, so a hole never shifts
a real token's position. Joining left-pads the shorter of the two caches; leaving selects
rows; when leading columns are holes for every remaining row they are cut away, so L stays
the longest live row, not the history of the batch.

A paged or slot cache would avoid those copies; on a CPU with a few dozen rows of short
chat turns the copies cost little next to the forward pass, and this layout needs nothing
from the model but its ordinary ``DynamicCache``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Generic, TypeVar

import torch
import torch.nn.functional as F
from transformers import DynamicCache, PretrainedConfig

from workbench.engine.kvcache import new_cache as growing_cache

RowT = TypeVar("RowT")
# Per layer: (keys, values), each [B, H_kv, L, D].
LayerKV = list[tuple[torch.Tensor, torch.Tensor]]


def positions_of(mask: torch.Tensor) -> torch.Tensor:
    """Position ids [B, L] from a mask with holes: a real token's count of real tokens before it."""
    return (mask.cumsum(-1) - 1).clamp(min=0)


def new_cache(config: PretrainedConfig, layers: LayerKV | None = None,
              grow: bool = True) -> DynamicCache:
    """A cache holding ``layers``; ``grow``: decode steps write in place (spare columns, see
    ``kvcache``), else a plain one for a single pass that appends once."""
    cache = growing_cache(config) if grow else DynamicCache(config=config)
    for i, (k, v) in enumerate(layers or []):
        cache.update(k, v, i)
    return cache


def layers_of(cache: DynamicCache) -> LayerKV:
    return [(layer.keys, layer.values) for layer in cache.layers]


@dataclass
class RunningBatch(Generic[RowT]):
    """Rows decoding together and their shared cache."""

    # One entry per batch row, in cache order.
    rows: list[RowT]
    # Keys/values of every row, right-aligned at column L.
    cache: DynamicCache
    # mask: [B, L], 1 on real tokens, 0 on holes.
    mask: torch.Tensor
    # next_pos: [B], the position id of each row's next token.
    next_pos: torch.Tensor
    # Tokens each row feeds to the next step: [B].
    next_ids: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def length(self) -> int:
        return int(self.mask.shape[1])

    def extend(self, other: "RunningBatch[RowT]") -> None:
        """Append ``other``'s rows, left-padding whichever cache is shorter."""
        L = max(self.length, other.length)
        # Layer by layer, so only one layer's old and new copies are alive at once.
        for mine, theirs in zip(self.cache.layers, other.cache.layers):
            mine.keys = torch.cat([_lpad(mine.keys, L), _lpad(theirs.keys, L)])
            mine.values = torch.cat([_lpad(mine.values, L), _lpad(theirs.values, L)])
            theirs.keys = theirs.values = None  # the joining rows' copy goes now, not with their job
        self.mask = torch.cat([_lpad(self.mask, L), _lpad(other.mask, L)])  # [B0+B1, L]
        self.next_pos = torch.cat([self.next_pos, other.next_pos])
        self.rows += other.rows
        self.next_ids += other.next_ids

    def keep(self, index: list[int]) -> None:
        """Keep only rows ``index`` (in that order), then cut columns that are holes for all."""
        if len(index) == len(self.rows):
            return
        sel = torch.tensor(index, dtype=torch.long, device=self.mask.device)
        mask = self.mask[sel]
        live = mask.any(0).nonzero()
        start = int(live[0]) if len(live) else mask.shape[1]
        for layer in self.cache.layers:  # layer by layer, as in ``extend``
            layer.keys = layer.keys[sel, :, start:]
            layer.values = layer.values[sel, :, start:]
        self.mask = mask[:, start:]
        self.next_pos = self.next_pos[sel]
        self.rows = [self.rows[i] for i in index]
        self.next_ids = [self.next_ids[i] for i in index]

    def step_inputs(self) -> dict[str, object]:
        """Inputs of one decode step; the mask gains the column the step writes."""
        device = self.mask.device
        self.mask = F.pad(self.mask, (0, 1), value=1)  # [B, L+1]
        ids = torch.tensor(self.next_ids, dtype=torch.long, device=device)[:, None]  # [B, 1]
        pos = self.next_pos[:, None]  # [B, 1]
        self.next_pos = self.next_pos + 1
        return {"input_ids": ids, "attention_mask": self.mask, "position_ids": pos,
                "cache": self.cache, "use_cache": True}


def _lpad(t: torch.Tensor, length: int) -> torch.Tensor:
    """Left-pad dim 2 (kv: [B, H, L, D]) or dim 1 (mask: [B, L]) with zeros up to ``length``."""
    n = length - (t.shape[2] if t.dim() == 4 else t.shape[1])
    if n <= 0:
        return t
    return F.pad(t, (0, 0, n, 0)) if t.dim() == 4 else F.pad(t, (n, 0))


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
