"""Runs one batch through the model: template → pad (or reuse the system prompt's cached
keys/values, see ``prefix``) → one generate with per-row adapters.

Rows of one batch may use different LoRA adapters: PEFT's mixed-adapter batch takes
``adapter_names`` (one per row, ``__base__`` for no adapter). When every row is base the
adapters are switched off for the call, so base-only batches pay nothing for LoRA.
"""
from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

import torch
from transformers import GenerationConfig, StoppingCriteriaList

from workbench.config import EngineConfig
from workbench.engine.prefix import (LayerKV, PrefixCache, PromptIds, build_batch, cache_layers,
                                     common_prefix_len, pack_rows)
from workbench.engine.request import BASE_ADAPTER, Request, RequestStatus
from workbench.engine.scheduler import Batch
from workbench.engine.streaming import BatchStreamer, RowState, RowStopping
from workbench.models.loaded import LoadedModel


def _eos_ids(loaded: LoadedModel) -> set[int]:
    ids: set[int] = set()
    for src in (loaded.model.generation_config.eos_token_id, loaded.tokenizer.eos_token_id):
        if isinstance(src, int):
            ids.add(src)
        elif src:
            ids.update(src)
    return ids


class ModelRunner:
    """Owns the model on the worker thread; nothing else calls it."""

    def __init__(self, loaded: LoadedModel, config: EngineConfig) -> None:
        self.loaded = loaded
        self.config = config
        self.model = loaded.model  # becomes a PeftModel once an adapter is loaded
        self.eos_ids = _eos_ids(loaded)
        self.prefixes = PrefixCache(config.prefix_cache_mb, config.min_prefix_tokens)
        if loaded.tokenizer.pad_token_id is None:
            loaded.tokenizer.pad_token = loaded.tokenizer.eos_token
        loaded.tokenizer.padding_side = "left"

    def encode(self, requests: list[Request]) -> dict[str, object]:
        """Template the batch; rows start from cached system-prompt keys/values when they can."""
        budget = self.prompt_budget(max(r.max_new_tokens for r in requests))
        rows = [self._prompt_ids(r) for r in requests]
        for req, row in zip(requests, rows):
            req.metrics.prompt_tokens = min(len(row.ids), budget)
        # prefix_len is 0 throughout when reuse is off (see _prompt_ids).
        if any(r.prefix_len for r in rows) and all(len(r.ids) <= budget for r in rows):
            return self._encode_prefixed(requests, rows)
        return self._encode_padded(rows, budget)

    def _prompt_ids(self, req: Request) -> PromptIds:
        tok = self.loaded.tokenizer
        text = tok.apply_chat_template(req.messages, add_generation_prompt=True, tokenize=False)
        ids = tok(text, add_special_tokens=False)["input_ids"]
        n = 0
        if self.prefixes.enabled and req.messages[0].get("role") == "system":
            try:
                head = tok.apply_chat_template(req.messages[:1], tokenize=False)
            except Exception:  # templates that insist on a user turn: nothing to reuse
                head = ""
            n = common_prefix_len(ids, tok(head, add_special_tokens=False)["input_ids"])
            n = min(n, len(ids) - 1)  # generate needs at least one token to run
        return PromptIds(ids, n if n >= self.prefixes.min_tokens else 0, req.adapter_key)

    def _encode_padded(self, rows: list[PromptIds], budget: int) -> dict[str, object]:
        """Left-pad; over-long prompts lose their oldest tokens, keeping the question and the
        generation prompt at the end and room for the answer in the context window."""
        ids, mask = pack_rows([[] for _ in rows], [r.ids[-budget:] for r in rows],
                              self.loaded.tokenizer.pad_token_id, self.loaded.device)
        return {"input_ids": ids, "attention_mask": mask}  # [B, T] each

    def _encode_prefixed(self, requests: list[Request], rows: list[PromptIds]) -> dict[str, object]:
        # Prefixes computed for this batch, kept here too: rows sharing one must not compute
        # it again even when the cache refuses or evicts it (a prefix over the whole budget).
        fresh: dict[tuple[str, tuple[int, ...]], LayerKV] = {}
        kvs: list[LayerKV | None] = []
        for req, row in zip(requests, rows):
            kv = None
            if row.prefix_len:
                kv, reused = self._prefix_kv(row, fresh)
                req.metrics.cached_tokens = row.prefix_len if reused else 0
            kvs.append(kv)
        return build_batch(rows, kvs, self.loaded.tokenizer.pad_token_id, self.loaded.model.config,
                           self.loaded.device)

    def _prefix_kv(self, row: PromptIds, fresh: dict) -> tuple[LayerKV, bool]:
        """The prefix's keys/values and whether they were reused rather than computed now."""
        key = (row.adapter_key, row.prefix)
        if key in fresh:
            return fresh[key], True
        kv = self.prefixes.get(row)
        if kv is not None:
            return kv, True
        ids = torch.tensor([row.prefix], device=self.loaded.device)  # [1, P]
        with self._adapter_context([row.adapter_key]) as extra:
            out = self.model(input_ids=ids, use_cache=True, **extra)
        kv = fresh[key] = cache_layers(out.past_key_values)
        self.prefixes.put(row, kv)
        return kv, False

    def prompt_budget(self, max_new_tokens: int) -> int:
        window = getattr(self.loaded.model.config, "max_position_embeddings", None) or 10**6
        return max(16, min(self.config.max_prompt_tokens, window - max_new_tokens))

    def run(self, batch: Batch) -> list[RowState]:
        """Generate for every row; rows stream as they go. Returns the rows' final state."""
        rows = [RowState(r) for r in batch.requests]
        gen_config = self._generation_config(batch)
        eos = set() if batch.sampling.ignore_eos else self.eos_ids
        streamer = BatchStreamer(rows, self.loaded.tokenizer, eos)
        stopping = StoppingCriteriaList([RowStopping(rows)])
        with torch.inference_mode():
            inputs = self.encode(batch.requests)
            with self._adapter_context(batch.adapter_keys) as extra:
                self.model.generate(**inputs, generation_config=gen_config, streamer=streamer,
                                    stopping_criteria=stopping, **extra)
        streamer.end()
        return rows

    def _generation_config(self, batch: Batch) -> GenerationConfig:
        s = batch.sampling
        longest = max(r.max_new_tokens for r in batch.requests)
        cfg = GenerationConfig(
            max_new_tokens=longest, do_sample=not s.greedy,
            pad_token_id=self.loaded.tokenizer.pad_token_id,
            eos_token_id=None if s.ignore_eos else (sorted(self.eos_ids) or None),
            repetition_penalty=s.repetition_penalty,
        )
        if s.ignore_eos:  # masks EOS logits, since generate may re-add the model's default EOS
            cfg.min_new_tokens = longest
        if not s.greedy:
            cfg.temperature, cfg.top_p = s.temperature, s.top_p
            torch.manual_seed(self.config.seed)
        return cfg

    @contextlib.contextmanager
    def _adapter_context(self, keys: list[str]) -> Iterator[dict[str, object]]:
        if not hasattr(self.model, "peft_config"):
            yield {}
        elif all(k == BASE_ADAPTER for k in keys):
            with self.model.disable_adapter():
                yield {}
        else:
            yield {"adapter_names": keys}


def finish_rows(rows: list[RowState], batch_start: float) -> None:
    """Fill in each request's metrics from its row, and mark it done."""
    now = time.monotonic()
    for row in rows:
        req, m = row.request, row.request.metrics
        m.queue_ms = (batch_start - req.arrival) * 1000.0
        m.batch_size = len(rows)
        m.completion_tokens = len(row.token_ids)
        end = row.last_token_at or now
        m.total_ms = (end - req.arrival) * 1000.0
        m.ttft_ms = ((row.first_token_at or end) - req.arrival) * 1000.0
        if m.completion_tokens > 1:
            m.tpot_ms = (m.total_ms - m.ttft_ms) / (m.completion_tokens - 1)
        cancelled = row.finish_reason == "cancelled" or req.cancelled
        req.status = RequestStatus.CANCELLED if cancelled else RequestStatus.FINISHED
        req.finish_reason = "cancelled" if cancelled else row.finish_reason
        req.stream.put(None)
        req.done_event.set()
