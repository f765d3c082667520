"""The running batch: one persistent key/value pool, grown and shrunk with the rows it runs.

Rows of one step share one forward call (that is what makes a step cheap) and each row may
use another adapter, which rules out transformers' own continuous batching (one adapter for
all requests). As in vLLM v1 there is one persistent batch: ``SlotPool`` holds one buffer
per layer, [S, H, C, D], and row i of the batch lives in slot i. Slots are allocated on
demand: S and C are powers of two that double when a row joins past S or a history passes
C (amortised O(1) per token), and halve to what is used when rows leave and the pool is four
times too large. Memory thus follows the rows actually running and their lengths, not the
largest batch; ``kv_cache_mb`` bounds what is admitted. A fresh pool is zeroed (a masked
column must hold finite numbers: -inf plus a garbage NaN is NaN). Reallocation bumps
``generation``, which retires the CUDA graphs captured on the old buffers (``capture.py``).

Layout: every row is right-aligned at the shared write column ``w`` (the mask's width);
older columns are the row's history or masked holes (left padding, the gap after a cached
system prompt). Position ids are kept per row, so a hole never shifts a real token's
position. A joining row is copied in once from its prefill cache, right-aligned at ``w``
(the batch shifts right first when the newcomer is longer); rows that leave are closed up by
moving the kept rows down; when leading columns are holes for every row, the batch shifts
left. A step writes one column in place (``SlotLayer``) and copies nothing. The same pool
serves both steps: the eager step reads slots [:B] and columns [:w+1] at exact shapes (the
CPU), the captured one slots [:Bb] and columns [:Lb], the buckets holding B and w + 1.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Generic, TypeVar

import torch
import torch.nn.functional as F
from transformers.cache_utils import Cache, CacheLayerMixin

from workbench.engine import memory
from workbench.engine.packing import LayerKV

RowT = TypeVar("RowT")
# The fewest columns a pool or graph bucket has; buckets double from here.
MIN_COLUMNS = 256
# A pool this many times larger than its rows or columns need is shrunk when rows leave.
_SHRINK = 4


def bucket(n: int, smallest: int = 1) -> int:
    """The smallest power of two >= n (and >= ``smallest``)."""
    size = smallest
    while size < n:
        size *= 2
    return size


class SlotPool:
    """Keys and values of every layer, [S, H, C, D] each, reused by batch after batch."""

    def __init__(self) -> None:
        self.keys: list[torch.Tensor] = []
        self.values: list[torch.Tensor] = []
        self.generation = 0

    @property
    def rows(self) -> int:
        return self.keys[0].shape[0] if self.keys else 0

    @property
    def columns(self) -> int:
        return self.keys[0].shape[2] if self.keys else 0

    def ensure(self, rows: int, columns: int, like: LayerKV, live: tuple[int, int] = (0, 0)) -> None:
        """Room for ``rows`` x ``columns``; ``like``: one (keys, values) per layer to copy
        heads, dims, dtype and device from; ``live``: the (rows, columns) to keep."""
        if rows <= self.rows and columns <= self.columns:
            return
        self._resize(bucket(max(rows, self.rows)), bucket(max(columns, self.columns), MIN_COLUMNS),
                     like, live)

    def shrink(self, live: tuple[int, int]) -> None:
        """Give memory back once the pool is ``_SHRINK`` times what ``live`` rows x columns need."""
        rows, columns = bucket(max(live[0], 1)), bucket(live[1] + 1, MIN_COLUMNS)
        if self.rows >= _SHRINK * rows or self.columns >= _SHRINK * columns:
            self._resize(rows, columns, self.layers(), live)

    def release(self) -> None:
        """Free every buffer (no row runs); the next ``ensure`` allocates afresh."""
        if self.keys:
            self.keys, self.values = [], []
            self.generation += 1
            memory.give_back()

    def _resize(self, S: int, C: int, like: LayerKV, live: tuple[int, int]) -> None:
        b, w = live
        replacing = bool(self.keys)
        for i, (k, v) in enumerate(like):
            new_k = k.new_zeros((S, k.shape[1], C, k.shape[3]))  # [S, H, C, D]
            new_v = v.new_zeros((S, v.shape[1], C, v.shape[3]))
            if i < len(self.keys):
                if b and w:
                    new_k[:b, :, :w] = self.keys[i][:b, :, :w]
                    new_v[:b, :, :w] = self.values[i][:b, :, :w]
                self.keys[i], self.values[i] = new_k, new_v  # the old pair goes now
            else:
                self.keys.append(new_k)
                self.values.append(new_v)
        self.generation += 1
        if replacing:  # the old buffers' pages, freed on the heap (a first allocation freed none)
            memory.give_back()

    def layers(self) -> LayerKV:
        return list(zip(self.keys, self.values))

    def cache(self, rows: int, columns: int, col: torch.Tensor) -> Cache:
        """A cache over slots [:rows] and columns [:columns] that writes at column ``col``."""
        return Cache(layers=[SlotLayer(k[:rows, :, :columns], v[:rows, :, :columns], col)
                             for k, v in zip(self.keys, self.values)])


class SlotLayer(CacheLayerMixin):
    """A view of the pool; a step's keys/values go to column ``col`` (a tensor, so a
    captured graph serves every write column)."""

    is_compileable = True

    def __init__(self, keys: torch.Tensor, values: torch.Tensor, col: torch.Tensor) -> None:
        super().__init__()
        self.keys, self.values, self.col = keys, values, col
        self.is_initialized = True

    def lazy_initialization(self, key_states: torch.Tensor, value_states: torch.Tensor) -> None:
        pass

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args: object,
               **kwargs: object) -> tuple[torch.Tensor, torch.Tensor]:
        self.keys.index_copy_(2, self.col, key_states)  # key_states: [B, H, 1, D]
        self.values.index_copy_(2, self.col, value_states)
        return self.keys, self.values

    def get_mask_sizes(self, query_length: int) -> tuple[int, int]:
        return self.keys.shape[2], 0

    def get_seq_length(self) -> int:
        return self.keys.shape[2]

    def get_max_length(self) -> int:
        return self.keys.shape[2]


@dataclass
class Joining(Generic[RowT]):
    """Prefilled rows about to join the running batch: their keys/values, right-aligned."""

    rows: list[RowT]
    # Per layer [B, H, n, D]; mask [B, n], 1 on real tokens; next_pos [B]; next_ids: B ids.
    layers: LayerKV
    mask: torch.Tensor
    next_pos: torch.Tensor
    next_ids: list[int]

    @classmethod
    def select(cls, rows: list[RowT], layers: LayerKV, mask: torch.Tensor, next_ids: list[int],
               keep: list[int]) -> "Joining[RowT]":
        """Rows ``keep`` of a prefill's output, without the columns that are holes for all."""
        if keep != list(range(len(rows))):  # a copy of the kept rows only
            sel = torch.tensor(keep, dtype=torch.long, device=mask.device)
            mask, layers = mask[sel], [(k[sel], v[sel]) for k, v in layers]
        start = _leading_holes(mask)
        return cls([rows[i] for i in keep], [(k[:, :, start:], v[:, :, start:]) for k, v in layers],
                   mask[:, start:], mask.sum(-1), [next_ids[i] for i in keep])

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def length(self) -> int:
        return int(self.mask.shape[1])


@dataclass
class SlotBatch(Generic[RowT]):
    """Rows decoding together, their keys/values in ``pool`` (row i in slot i)."""

    pool: SlotPool
    rows: list[RowT] = field(default_factory=list)
    # mask: [B, w], 1 on real tokens, 0 on holes; w is the next write column.
    mask: torch.Tensor | None = None
    # next_pos: [B], the position id of each row's next token.
    next_pos: torch.Tensor | None = None
    next_ids: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def length(self) -> int:
        return int(self.mask.shape[1]) if self.mask is not None else 0

    def extend(self, other: Joining[RowT]) -> None:
        """Copy ``other``'s rows in after ours, right-aligned at the write column."""
        b0, b1, w, n = len(self), len(other), self.length, other.length
        self.pool.ensure(b0 + b1, max(w, n) + 1, other.layers, live=(b0, w))
        if n > w and b0:
            self._shift(n - w)
        w = max(w, n)
        for (pk, pv), (k, v) in zip(self.pool.layers(), other.layers):
            pk[b0:b0 + b1, :, w - n:w] = k
            pv[b0:b0 + b1, :, w - n:w] = v
        other.layers = []  # the joining rows' copy goes now
        mask = F.pad(other.mask, (w - n, 0))  # [B1, w]
        self.mask = mask if self.mask is None else torch.cat([self.mask, mask])
        pos = other.next_pos
        self.next_pos = pos if self.next_pos is None else torch.cat([self.next_pos, pos])
        self.rows += other.rows
        self.next_ids += other.next_ids

    def keep(self, index: list[int]) -> None:
        """Keep rows ``index`` (ascending): kept rows move down to the first slots."""
        if index == list(range(len(self.rows))):
            return
        assert index == sorted(index), "rows keep their order"
        w = self.length
        moved = [j for j, i in enumerate(index) if i != j]
        if moved:
            src = torch.tensor([index[j] for j in moved], device=self.mask.device)
            dst = torch.tensor(moved, device=self.mask.device)
            for pk, pv in self.pool.layers():
                pk[dst, :, :w] = pk[src, :, :w]
                pv[dst, :, :w] = pv[src, :, :w]
        sel = torch.tensor(index, dtype=torch.long, device=self.mask.device)
        self.mask, self.next_pos = self.mask[sel], self.next_pos[sel]
        self.rows = [self.rows[i] for i in index]
        self.next_ids = [self.next_ids[i] for i in index]
        start = _leading_holes(self.mask)
        if start and start >= max(MIN_COLUMNS // 4, w // 4):
            self._shift(-start)
        self.pool.shrink((len(self), self.length))

    def make_room(self) -> None:
        """Room for the next step's column: shift left over shared holes, else grow."""
        w = self.length
        if w + 1 <= self.pool.columns:
            return
        start = _leading_holes(self.mask)
        if start:
            self._shift(-start)
        else:
            self.pool.ensure(len(self), w + 1, self.pool.layers(), live=(len(self), w))

    def step_inputs(self) -> dict[str, object]:
        """Inputs of one eager step at exact shapes: B rows, w + 1 columns (call ``make_room``
        first); the step writes column w."""
        B, w = len(self), self.length
        device = self.mask.device
        mask = F.pad(self.mask, (0, 1), value=1)  # [B, w+1]
        col = torch.tensor([w], dtype=torch.long, device=device)
        ids = torch.tensor(self.next_ids, dtype=torch.long, device=device)[:, None]  # [B, 1]
        return {"input_ids": ids, "attention_mask": mask, "position_ids": self.next_pos[:, None],
                "cache": self.pool.cache(B, w + 1, col), "use_cache": True, "logits_to_keep": 1}

    def advance(self) -> None:
        """After a step: its column is part of every row's history."""
        self.mask = F.pad(self.mask, (0, 1), value=1)  # [B, w+1]
        self.next_pos = self.next_pos + 1

    def _shift(self, d: int) -> None:
        """Move every row's columns by ``d`` (right if > 0); the mask follows."""
        b, w = len(self), self.length
        for pk, pv in self.pool.layers():
            if d > 0:
                pk[:b, :, d:d + w] = pk[:b, :, :w].clone()
                pv[:b, :, d:d + w] = pv[:b, :, :w].clone()
            else:
                pk[:b, :, :w + d] = pk[:b, :, -d:w].clone()
                pv[:b, :, :w + d] = pv[:b, :, -d:w].clone()
        self.mask = F.pad(self.mask, (d, 0)) if d > 0 else self.mask[:, -d:]


def _leading_holes(mask: torch.Tensor) -> int:
    """Columns at the start that are holes for every row (all of them when none is real)."""
    live = mask.any(0).nonzero()
    return int(live[0]) if len(live) else int(mask.shape[1])
