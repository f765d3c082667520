"""The decode step at fixed shapes, captured once per bucket as a CUDA graph.

On a GPU a small model's decode step is bound by Python and kernel launches, not by the
matmuls: hundreds of kernels per token, each launched from Python. vLLM captures the step
as a CUDA graph for each of a few batch sizes and replays it; this module does the same for
the running batch. What makes one graph serve every step of a bucket:

- shapes: B rows padded to the bucket Bb (1, 2, 4, ... up to ``max_batch_size``), the
  history's w + 1 columns to Lb (256, 512, ...); padding rows attend only to their own
  column, so they stay finite and touch no real row;
- addresses: keys/values live in a persistent pool (``slots.py``), ids, positions, the mask
  and the write column in buffers the graph owns; a step copies its values into them and
  replays;
- no Python choice inside: the mask is a prepared 4D additive mask (transformers uses it as
  is), the write column is a tensor, and each row's adapter is a one-hot row of the stacked
  LoRA (``stacked_lora.py``), the engine's one routing.

Modes (``EngineConfig.decode_graphs``): ``off`` runs the step eagerly at exact shapes over
the same pool (``runner.decode``); ``static`` runs the bucketed step eagerly (what the CPU
tests check against ``off`` under the tolerance rule); ``cuda`` captures it; ``auto`` is
``cuda`` on a CUDA device, else ``off``. The CPU stays on ``off``: there a step is bound by
its matmuls, not by launches, and the bucketed step bought nothing clear (SmolLM2-135M, two
adapters, rows mixed, two interleaved runs of the GPU check's timing on 2 cores: 64-66
against 73-74 ms a step at 1 row, 114-150 against 116-124 ms at 16 rows). The pool grows and
shrinks on demand (``slots.py``) and each reallocation retires the captured graphs, so a
GPU captures a bucket again only after the pool changed size (sizes double or quarter, so
rarely). A capture that fails falls back to ``static`` and says why in ``stats.fallback``;
it fails no row.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import torch

from workbench.engine.slots import MIN_COLUMNS, SlotBatch, SlotPool, bucket
from workbench.engine.stacked_lora import StackedLora

log = logging.getLogger(__name__)
MODES = ("off", "static", "cuda", "auto")


def resolve_mode(mode: str, device: str | torch.device) -> str:
    if mode not in MODES:
        from workbench.errors import UnknownNameError

        raise UnknownNameError("decode graphs mode", mode, MODES)
    if mode == "auto":
        return "cuda" if torch.device(device).type == "cuda" else "off"
    return mode


def graph_pool(device: torch.device) -> object:
    """The memory pool the buckets' graphs share (each graph's temporaries are dead between
    replays, and replays never overlap); refuses a model that is not on a CUDA device."""
    if device.type != "cuda":
        raise RuntimeError(f"CUDA graphs need the model on a CUDA device, and it is on {device}")
    return torch.cuda.graph_pool_handle()


@dataclass
class StepBuffers:
    """What a bucket's step reads; a step copies its values in, the graph never moves them."""

    ids: torch.Tensor  # [Bb, 1]
    pos: torch.Tensor  # [Bb, 1]
    mask: torch.Tensor  # [Bb, 1, 1, Lb], 0 where a row attends, the dtype's min elsewhere
    col: torch.Tensor  # [1], the write column
    onehot: torch.Tensor  # [Bb, N], each row's adapter

    @classmethod
    def new(cls, rows: int, columns: int, adapters: int, dtype: torch.dtype,
            device: torch.device) -> "StepBuffers":
        return cls(torch.zeros((rows, 1), dtype=torch.long, device=device),
                   torch.zeros((rows, 1), dtype=torch.long, device=device),
                   torch.zeros((rows, 1, 1, columns), dtype=dtype, device=device),
                   torch.zeros(1, dtype=torch.long, device=device),
                   torch.zeros((rows, adapters), dtype=dtype, device=device))

    def fill(self, batch: SlotBatch, stacks: StackedLora | None, keys: list[str]) -> None:
        rows, columns = self.ids.shape[0], self.mask.shape[-1]
        B, w = len(batch), batch.length
        ids = torch.zeros(rows, dtype=torch.long)
        ids[:B] = torch.tensor(batch.next_ids, dtype=torch.long)
        pos = torch.zeros(rows, dtype=torch.long)
        pos[:B] = batch.next_pos.cpu()
        low = torch.finfo(self.mask.dtype).min
        mask = torch.full((rows, columns), low, dtype=self.mask.dtype)  # [Bb, Lb]
        mask[:B, :w] = torch.where(batch.mask.cpu().bool(), 0.0, low)
        mask[:, w] = 0  # every row attends to the column it writes
        self.ids.copy_(ids[:, None])
        self.pos.copy_(pos[:, None])
        self.mask.copy_(mask[:, None, None])
        self.col.fill_(w)
        if stacks is not None:
            self.onehot.copy_(stacks.onehot(keys, rows))


@dataclass
class DecodeStats:
    """How the decode steps ran: graphs captured and replayed, eager steps, and why a
    capture was given up (empty while none was)."""

    mode: str = "off"
    captures: int = 0
    replays: int = 0
    eager_steps: int = 0
    graphs: int = 0
    fallback: str = ""


class _Graph:
    """One bucket's step: captured (CUDA) or run again on each call (``static``)."""

    def __init__(self, fn: Callable[[], torch.Tensor], buffers: StepBuffers) -> None:
        self.fn, self.buffers = fn, buffers
        self.cuda_graph: torch.cuda.CUDAGraph | None = None
        self.logits: torch.Tensor | None = None

    def capture(self, mempool: object) -> None:
        # Warm-up on a side stream first (lazy inits, cuBLAS workspaces), as capture needs.
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            for _ in range(2):
                self.fn()
        torch.cuda.current_stream().wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        # thread_local: another thread's CUDA call (a metrics scrape) must not void the capture.
        with torch.cuda.graph(graph, pool=mempool, capture_error_mode="thread_local"):
            self.logits = self.fn()
        self.cuda_graph = graph

    def run(self) -> torch.Tensor:
        if self.cuda_graph is None:
            return self.fn()
        self.cuda_graph.replay()
        return self.logits


class StaticDecoder:
    """Decode steps of a ``SlotBatch``: bucketed, stacked adapters, captured in ``cuda`` mode."""

    def __init__(self, mode: str, pool: SlotPool) -> None:
        self.mode = mode
        self.pool = pool
        self.stats = DecodeStats(mode=mode)
        self._stacks: StackedLora | None = None
        self._graphs: dict[tuple[int, int], _Graph] = {}
        self._generation = -1
        self._mempool: object = None

    def describe(self) -> str:
        """One line for the Monitor: how the decode steps run now."""
        st = self.stats
        if self.mode == "cuda":
            return f"CUDA graphs ({st.captures} captured)"
        text = f"bucketed, eager ({st.graphs} bucket{'' if st.graphs == 1 else 's'})"
        return text + (f"; capture failed: {st.fallback[:120]}" if st.fallback else "")

    def summary(self) -> str:
        """Every count, for a benchmark's report."""
        st = self.stats
        text = (f"{st.mode}: {st.graphs} buckets, {st.captures} captured, {st.replays} replays, "
                f"{st.eager_steps} eager steps")
        return text + (f"; capture failed: {st.fallback}" if st.fallback else "")

    def adapters_changed(self) -> None:
        """LoRA weights came or went: capture again (the runner restacks them)."""
        self._stacks = None
        self._drop_graphs()

    def decode(self, model: torch.nn.Module, batch: SlotBatch, stacks: StackedLora) -> torch.Tensor:
        """One token for every row of ``batch``: logits [B, V]; ``model`` is the transformers
        model (PEFT's wrapper bypassed), ``stacks`` every loaded adapter's LoRA."""
        if stacks is not self._stacks:  # adapters changed: graphs hold the old stacks
            self._stacks = stacks
            self._drop_graphs()
        batch.make_room()
        keys = [row.adapter_key for row in batch.rows]
        with torch.inference_mode():
            graph = self._graph(model, stacks, bucket(len(batch)), bucket(batch.length + 1, MIN_COLUMNS))
            graph.buffers.fill(batch, stacks, keys)
            if self.mode == "cuda" and graph.cuda_graph is None:
                # After the fill: capturing runs the step, which writes this step's column.
                self._capture(graph)
            logits = graph.run()[:len(batch)].clone()
            self.stats.replays += graph.cuda_graph is not None
            self.stats.eager_steps += graph.cuda_graph is None
        batch.advance()
        return logits

    # ---- the bucketed step ---------------------------------------------------------------
    def _graph(self, model: torch.nn.Module, stacks: StackedLora, rows: int, columns: int) -> _Graph:
        if self._generation != self.pool.generation:
            # The pool was reallocated: captured graphs point at freed buffers (an eager
            # step looks the pool up on each call, so it stays).
            self._graphs = {k: g for k, g in self._graphs.items() if g.cuda_graph is None}
            self.stats.graphs = len(self._graphs)
            self._generation = self.pool.generation
        graph = self._graphs.get((rows, columns))
        if graph is None:
            ref = self.pool.keys[0]
            buffers = StepBuffers.new(rows, columns, len(stacks.names), ref.dtype, ref.device)
            graph = _Graph(self._step_fn(model, stacks, buffers), buffers)
            self._graphs[(rows, columns)] = graph
            self.stats.graphs = len(self._graphs)
        return graph

    def _capture(self, graph: _Graph) -> None:
        try:
            if self._mempool is None:
                self._mempool = graph_pool(graph.buffers.ids.device)
            graph.capture(self._mempool)
            self.stats.captures += 1
        except Exception as exc:  # a kernel or a model that cannot be captured: run eagerly
            self.mode = self.stats.mode = "static"
            self.stats.fallback = f"{type(exc).__name__}: {exc}"
            graph.cuda_graph = None
            log.warning("decode step not captured, running it eagerly: %s", self.stats.fallback)

    def _step_fn(self, model: torch.nn.Module, stacks: StackedLora,
                 buffers: StepBuffers) -> Callable[[], torch.Tensor]:
        rows, columns = buffers.ids.shape[0], buffers.mask.shape[-1]
        pool = self.pool

        def step() -> torch.Tensor:
            cache = pool.cache(rows, columns, buffers.col)
            with stacks.routed(buffers.onehot):
                out = model(input_ids=buffers.ids, attention_mask=buffers.mask,
                            position_ids=buffers.pos, cache=cache, use_cache=True, logits_to_keep=1)
            return out.logits[:, -1]  # [Bb, V]
        return step

    def _drop_graphs(self) -> None:
        self._graphs.clear()
        self.stats.graphs = 0

