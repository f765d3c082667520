"""The model side of a step: prefill chunks and decode steps, per-row adapters. Worker only.

Generation is a ladder of small functions (as in gpt-fast) instead of ``model.generate``:
``start_prefill`` lays a group of admitted rows out as one left-padded batch (cached system
prompts copied in), ``prefill_chunk`` runs the next slice of its columns, and ``decode`` runs
one token for every row of the running batch. ``generate`` owns its loop until the longest
row ends; owning the loop is what lets a row join or leave between any two tokens.

Rows of one call may use different LoRA adapters: every forward (prefill, decode,
log-likelihood, a prefix's keys/values) goes through ``forward``, which adds each row's LoRA
delta from the adapters stacked per layer and a one-hot row per row (``stacked_lora.py``), on
the float and the INT4 AWQ base alike; PEFT only loads the adapter files. A step whose rows
are all base adds no hook, so it pays nothing for LoRA beyond a flag per LoRA layer.

The running batch is one persistent pool of slots that grows and shrinks with the rows
(``slots.py``); a prefilled group is copied into it on ``join``. ``decode`` runs the step
eagerly at exact shapes over that pool, or, with ``decode_graphs`` on (a CUDA device by
default), the same step padded to a bucket and replayed as a CUDA graph (``capture.py``);
prefill stays eager, its shapes vary too much to capture. On the 2-core CPU graphs are off
(``capture.py`` says why, with figures). ``torch.compile(model, dynamic=True)`` of the bare
SmolLM2's bfloat16 decode (16 rows, no adapters) with inductor's weight freezing took a step
52.2 -> 44.6 ms, after 97 s of compiling; it is not used, because every adapter load rewrites
the layers it traced and would cost another compile on the worker.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field

import torch
from transformers import DynamicCache

from workbench.config import EngineConfig
from workbench.engine.capture import StaticDecoder, resolve_mode
from workbench.engine.packing import (LayerKV, layers_of, new_cache, pack_rows, positions_of,
                                      stack_prefixes)
from workbench.engine.prefix import PrefixCache, PromptIds
from workbench.engine.prompt import Prompter
from workbench.engine.request import BASE_ADAPTER, Request
from workbench.engine import onednn, precision, sampling
from workbench.engine.sampling import RowSampler
from workbench.engine.slots import Joining, SlotBatch, SlotPool
from workbench.engine.stacked_lora import StackedLora
from workbench.engine.streaming import TextStream
from workbench.errors import AdapterError, InputError
from workbench.models.loaded import LoadedModel

# The running batch, in the runner's slot pool.
Batch = SlotBatch["Row"]


def returned_cache(out: object) -> DynamicCache:
    """The cache a forward returned (``cache`` in transformers 5, ``past_key_values`` before)."""
    cache = getattr(out, "cache", None)
    return cache if cache is not None else out.past_key_values


def _eos_ids(loaded: LoadedModel) -> set[int]:
    ids: set[int] = set()
    for src in (loaded.model.generation_config.eos_token_id, loaded.tokenizer.eos_token_id):
        if isinstance(src, int):
            ids.add(src)
        elif src:
            ids.update(src)
    return ids


def _contiguous_input(module: torch.nn.Module, args: tuple) -> tuple:  # noqa: ARG001 - a torch hook
    return (args[0].contiguous(), *args[1:])


@dataclass
class Row:
    """One admitted request's decoding state; survives a preemption."""

    # The request it serves.
    request: Request
    # Its sampler (settings, generator, grammar) and its text stream.
    sampler: RowSampler
    text: TextStream
    # Most rows it decoded alongside (itself included).
    max_batch: int = 1

    @property
    def adapter_key(self) -> str:
        return self.request.adapter_key


@dataclass
class PrefillJob:
    """Admitted rows being prefilled together, a chunk of columns per step."""

    # The rows, in cache order.
    rows: list[Row]
    # ids, mask, pos: [B, T] (T = cached prefix columns + longest rest).
    ids: torch.Tensor
    mask: torch.Tensor
    pos: torch.Tensor
    # Keys/values of the columns run so far.
    cache: DynamicCache | None
    # Columns already in the cache.
    done: int
    # Rows whose uncached prefix is stored once prefilled: (row index, prompt, first column).
    store: list[tuple[int, PromptIds, int]] = field(default_factory=list)

    @property
    def finished(self) -> bool:
        return self.done >= self.ids.shape[1]


class ModelRunner:
    """Owns the model on the worker thread; nothing else calls it while the engine runs."""

    def __init__(self, loaded: LoadedModel, config: EngineConfig) -> None:
        self.loaded = loaded
        self.config = config
        # Cast before anything reads the model's dtype (masks, the slot pool, the KV budget).
        self.dtype = precision.apply(loaded, config.dtype)
        if not loaded.is_awq and onednn.supported(loaded.device, self.dtype):
            onednn.pack_linears(loaded.model)
        self.model = loaded.model  # becomes a PeftModel once an adapter is loaded
        self.eos_ids = _eos_ids(loaded)
        self.prefixes = PrefixCache(config.prefix_cache_mb, config.min_prefix_tokens)
        if loaded.tokenizer.pad_token_id is None:
            loaded.tokenizer.pad_token = loaded.tokenizer.eos_token
        loaded.tokenizer.padding_side = "left"
        self.prompter = Prompter(loaded.tokenizer)
        head = self.model.get_output_embeddings()
        self.vocab_size = int(head.weight.shape[0])
        # A prefill's last column is a strided slice [B, 1, H]. Once PEFT has set the base
        # weights to need no grad, torch's matmul no longer folds such an input into one mm:
        # it broadcasts the whole [V, H] head per row and runs a bmm over those copies (1.1 s
        # of a 16-row SmolLM2 prefill chunk against 5 ms, profiled). A contiguous input folds.
        head.register_forward_pre_hook(_contiguous_input)
        self._stacks: StackedLora | None = None
        self.pool = SlotPool()
        mode = resolve_mode(config.decode_graphs, loaded.device)
        self.static = StaticDecoder(mode, self.pool) if mode != "off" else None

    def adapters_changed(self) -> None:
        """Adapters came or went: keys/values and stacked weights made under the old set go."""
        self.prefixes.clear()
        self._stacks = None
        if self.static is not None:
            self.static.adapters_changed()

    def context_window(self) -> int | None:
        """The base's context window (prompt plus answer) in tokens, when its config says."""
        return getattr(self.loaded.model.config, "max_position_embeddings", None)

    def prompt_budget(self, max_new_tokens: int) -> int:
        window = self.context_window() or 10**6
        return max(16, min(self.config.max_prompt_tokens, window - max_new_tokens))

    def kv_bytes_per_token(self) -> int:
        """Bytes of keys and values one token takes over all layers (the cache's dtype is
        the model's compute dtype, also for an INT4 base)."""
        cfg = self.model.config
        cfg = cfg.get_text_config(decoder=True) if hasattr(cfg, "get_text_config") else cfg
        heads = getattr(cfg, "num_attention_heads", 1)
        kv_heads = getattr(cfg, "num_key_value_heads", None) or heads
        head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // heads
        size = self.model.get_input_embeddings().weight.element_size()
        return 2 * cfg.num_hidden_layers * kv_heads * head_dim * size

    def min_prefix(self) -> int:
        """Shortest reusable system prompt; 0 when reuse is off."""
        return max(1, self.prefixes.min_tokens) if self.prefixes.enabled else 0

    def new_row(self, req: Request) -> Row:
        """A row for an admitted request; its grammar is compiled here (errors fail it)."""
        constraint = None
        if req.sampling.structured is not None:
            constraint = sampling.compile_constraint(req.sampling.structured, self.loaded.tokenizer,
                                                     self.vocab_size)
        sampler = RowSampler(req.sampling, req.prompt_ids, self.eos_ids, constraint, self.loaded.device)
        return Row(req, sampler, TextStream(self.loaded.tokenizer, req.sampling.stop))

    # ---- prefill -----------------------------------------------------------------------
    def start_prefill(self, rows: list[Row]) -> PrefillJob:
        """Lay rows out for prefill: [cached prefix | holes | left pad | rest of the ids].

        A preempted row comes back with its output so far appended: prefilling it gives
        the logits of its next token, as if it had never left.
        """
        prompts, kvs, store = [], [], []
        for b, row in enumerate(rows):
            req = row.request
            prompt = PromptIds(req.prompt_ids + req.output_token_ids, req.prefix_len, req.adapter_key)
            kv = self.prefixes.get(prompt) if prompt.prefix_len else None
            req.metrics.cached_tokens = prompt.prefix_len if kv is not None else 0
            if prompt.prefix_len and kv is None:
                store.append((b, prompt))
            prompts.append(prompt)
            kvs.append(kv)
        lens = [p.prefix_len if kv is not None else 0 for p, kv in zip(prompts, kvs)]
        ids, mask = pack_rows([p.ids[:n] for p, n in zip(prompts, lens)],
                              [p.ids[n:] for p, n in zip(prompts, lens)],
                              self.loaded.tokenizer.pad_token_id, self.loaded.device)  # [B, T]
        P = max(lens)
        cache = new_cache(self.model.config, stack_prefixes(kvs, lens) if P else None)
        T = ids.shape[1]
        starts = [(b, p, T - len(p.ids)) for b, p in store]  # uncached rows sit right-aligned
        return PrefillJob(rows, ids, mask, positions_of(mask), cache, P, starts)

    def prefill_chunk(self, job: PrefillJob, tokens: int | None = None) -> torch.Tensor | None:
        """Run the job's next columns (``tokens`` over all rows, default the config's chunk;
        a last quarter-chunk comes along); the rows' last logits [B, V] once all are in."""
        B, T = len(job.rows), job.ids.shape[1]
        columns = max(1, (tokens or self.config.prefill_chunk_tokens) // B)
        end = min(T, job.done + columns)
        if T - end <= columns // 4:  # a last chunk of a few columns would cost a whole pass
            end = T
        out = self.forward([r.adapter_key for r in job.rows], input_ids=job.ids[:, job.done:end],
                           attention_mask=job.mask[:, :end], position_ids=job.pos[:, job.done:end],
                           cache=job.cache, use_cache=True, logits_to_keep=1)
        job.done = end
        if not job.finished:
            return None
        self._store_prefixes(job)
        return out.logits[:, -1]  # [B, V]

    def _store_prefixes(self, job: PrefillJob) -> None:
        layers = layers_of(job.cache)
        for b, prompt, start in job.store:
            n = prompt.prefix_len
            kv: LayerKV = [(k[b:b + 1, :, start:start + n].clone(), v[b:b + 1, :, start:start + n].clone())
                           for k, v in layers]
            self.prefixes.put(prompt, kv)

    def join(self, batch: Batch | None, job: PrefillJob, first_ids: list[int], keep: list[int]) -> Batch:
        """The running batch with the prefilled rows ``keep`` of ``job`` copied in, each to feed
        its ``first_ids`` entry next; the job's cache goes."""
        joining = Joining.select(job.rows, layers_of(job.cache), job.mask, first_ids, keep)
        job.cache = None  # only the kept rows' copy lives on, until it is in the pool
        batch = batch if batch is not None else SlotBatch(self.pool)
        batch.extend(joining)
        return batch

    def drop_batch(self) -> None:
        """The running batch is gone: its keys/values go back to the OS, unless captured
        graphs read them (a GPU keeps its pool between bursts, as vLLM does)."""
        if self.static is None or self.static.mode != "cuda":
            self.pool.release()

    # ---- decode ------------------------------------------------------------------------
    def decode(self, batch: Batch) -> torch.Tensor:
        """One token for every running row: logits [B, V]."""
        if self.static is not None:
            return self.static.decode(self.base_model, batch, self.stacks())
        batch.make_room()
        out = self.forward([r.adapter_key for r in batch.rows], **batch.step_inputs())
        batch.advance()
        return out.logits[:, -1]

    def forward(self, adapter_keys: list[str], **inputs: object) -> object:
        """The model on ``inputs`` (batch rows in ``adapter_keys`` order), each row with its
        adapter's LoRA; an adapter that is not loaded is refused."""
        with torch.inference_mode(), self.routing(adapter_keys):
            return self.base_model(**inputs)

    @contextlib.contextmanager
    def routing(self, adapter_keys: list[str]) -> Iterator[None]:
        """Within the block every forward of the model (a ``generate`` too) gives batch row i
        the LoRA of ``adapter_keys[i]``; an adapter that is not loaded is refused."""
        stacks = self.stacks()
        unknown = stacks.unknown(adapter_keys)
        if unknown:
            raise InputError(f"Adapter {unknown[0]!r} is not loaded.")
        routed = any(k != BASE_ADAPTER for k in adapter_keys)
        onehot = stacks.onehot(adapter_keys, len(adapter_keys), device=self.loaded.device) if routed else None
        with stacks.routed(onehot):
            yield

    @property
    def base_model(self) -> torch.nn.Module:
        """The transformers model itself (under PEFT's wrapper once adapters are loaded)."""
        return self.model.get_base_model() if hasattr(self.model, "get_base_model") else self.model

    def stacks(self) -> StackedLora:
        """Every loaded adapter's LoRA, stacked per layer (built after each adapter change)."""
        if self._stacks is None:
            why = self.restack()
            if why:  # ``lora.attach_adapter`` refuses these: a bug if seen
                raise AdapterError(f"The loaded adapters cannot be stacked: {why}")
        assert self._stacks is not None
        return self._stacks

    def restack(self) -> str | None:
        """Stack every loaded adapter's LoRA now; why they cannot be, None once stacked."""
        names = sorted(getattr(self.model, "peft_config", None) or [])
        stacks = StackedLora.build(self.model, names, self.dtype) if names else StackedLora([], [], self.dtype)
        self._stacks = None if isinstance(stacks, str) else stacks
        return stacks if isinstance(stacks, str) else None

    def prefix_kv(self, prompt: PromptIds) -> LayerKV:
        """A prefix's keys/values [1, H, P, D] per layer, from the cache or computed now."""
        kv = self.prefixes.get(prompt)
        if kv is None:
            ids = torch.tensor([list(prompt.prefix)], device=self.loaded.device)  # [1, P]
            out = self.forward([prompt.adapter_key], input_ids=ids, use_cache=True, logits_to_keep=1)
            kv = [(layer.keys, layer.values) for layer in returned_cache(out).layers]
            self.prefixes.put(prompt, kv)
        return kv
