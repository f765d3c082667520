"""The running batch in a persistent key/value pool, for a decode step of fixed shapes.

A captured decode step (``capture.py``) reads and writes its keys/values at fixed addresses,
so they cannot live in tensors that are re-made whenever a row joins or leaves, as
``batch.RunningBatch`` does. ``SlotPool`` holds one buffer per layer, [S, H, C, D], zeroed
once (a masked column must hold finite numbers: -inf plus a garbage NaN is NaN), with a
slot for every row the engine may run (as vLLM allocates its cache up front), and
reallocated only when a row outgrows its columns, to the next power of two. It takes
``max_batch_size`` x that many columns whatever runs (GLM-4 9B in half precision: 40 KiB a
token, so 16 slots x 4,096 columns = 2.5 GiB); ``kv_cache_mb`` still bounds what is admitted.
Reallocation bumps ``generation``, which retires the graphs captured on the old buffers.

The layout is the running batch's, kept in place: row i of the batch is slot i, every row is
right-aligned at the shared write column ``w`` (the mask's width), older columns are the
row's history or masked holes. A joining row is copied in once, right-aligned at ``w`` (the
batch shifts right first when the newcomer is longer); rows that leave are closed up by
moving the kept rows down; when many leading columns are holes for every row, the batch
shifts left. A step of B rows and w columns then reads slots [:Bb] and columns [:Lb], Bb and
Lb the buckets holding B and w + 1, always the same views for the same buckets.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Generic, TypeVar

import torch
import torch.nn.functional as F
from transformers.cache_utils import Cache, CacheLayerMixin

from workbench.engine.batch import RunningBatch

RowT = TypeVar("RowT")
# The fewest columns a pool or graph bucket has; buckets double from here.
MIN_COLUMNS = 256


def bucket(n: int, smallest: int = 1) -> int:
    """The smallest power of two >= n (and >= ``smallest``)."""
    size = smallest
    while size < n:
        size *= 2
    return size


class SlotPool:
    """Keys and values of every layer, [S, H, C, D] each, reused by batch after batch."""

    def __init__(self, max_rows: int) -> None:
        self.max_rows = max_rows
        self.keys: list[torch.Tensor] = []
        self.values: list[torch.Tensor] = []
        self.generation = 0

    @property
    def rows(self) -> int:
        return self.keys[0].shape[0] if self.keys else 0

    @property
    def columns(self) -> int:
        return self.keys[0].shape[2] if self.keys else 0

    def ensure(self, rows: int, columns: int, like: list[tuple[torch.Tensor, torch.Tensor]],
               live: tuple[int, int] = (0, 0)) -> None:
        """Room for ``rows`` x ``columns``; ``like``: one (keys, values) per layer to copy
        heads, dims, dtype and device from; ``live``: the (rows, columns) to keep."""
        if rows <= self.rows and columns <= self.columns:
            return
        S = bucket(max(rows, self.max_rows))  # every slot at once: rows come and go often
        C = bucket(max(columns, self.columns), MIN_COLUMNS)
        b, w = live
        for i, (k, v) in enumerate(like):
            new_k = k.new_zeros((S, k.shape[1], C, k.shape[3]))  # [S, H, C, D]
            new_v = v.new_zeros((S, v.shape[1], C, v.shape[3]))
            if i < len(self.keys) and b and w:
                new_k[:b, :, :w] = self.keys[i][:b, :, :w]
                new_v[:b, :, :w] = self.values[i][:b, :, :w]
                self.keys[i], self.values[i] = new_k, new_v  # the old pair goes now
            elif i < len(self.keys):
                self.keys[i], self.values[i] = new_k, new_v
            else:
                self.keys.append(new_k)
                self.values.append(new_v)
        self.generation += 1

    def layers(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
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

    def extend(self, other: RunningBatch[RowT]) -> None:
        """Copy ``other``'s rows in after ours, right-aligned at the write column."""
        b0, b1, w, n = len(self), len(other), self.length, other.length
        like = [(layer.keys, layer.values) for layer in other.cache.layers]
        self.pool.ensure(b0 + b1, max(w, n) + 1, like, live=(b0, w))
        if n > w and b0:
            self._shift(n - w)
        w = max(w, n)
        for (pk, pv), layer in zip(self.pool.layers(), other.cache.layers):
            pk[b0:b0 + b1, :, w - n:w] = layer.keys
            pv[b0:b0 + b1, :, w - n:w] = layer.values
            layer.keys = layer.values = None  # the joining rows' copy goes now
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
        start = self._leading_holes()
        if start and start >= max(MIN_COLUMNS // 4, w // 4):
            self._shift(-start)

    def make_room(self) -> None:
        """Room for the next step's column: shift left over shared holes, else grow."""
        w = self.length
        if w + 1 <= self.pool.columns:
            return
        start = self._leading_holes()
        if start:
            self._shift(-start)
        else:
            self.pool.ensure(len(self), w + 1, self.pool.layers(), live=(len(self), w))

    def advance(self) -> None:
        """After a step: its column is part of every row's history."""
        self.mask = F.pad(self.mask, (0, 1), value=1)  # [B, w+1]
        self.next_pos = self.next_pos + 1

    def _leading_holes(self) -> int:
        """Columns at the start that are holes for every row (all of them when none is real)."""
        live = self.mask.any(0).nonzero()
        return int(live[0]) if len(live) else self.length

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
