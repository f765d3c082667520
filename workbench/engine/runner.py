"""Runs one batch through the model: template → left-pad → one generate with per-row adapters.

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
        if loaded.tokenizer.pad_token_id is None:
            loaded.tokenizer.pad_token = loaded.tokenizer.eos_token
        loaded.tokenizer.padding_side = "left"

    def encode(self, requests: list[Request]) -> dict[str, torch.Tensor]:
        """Chat-template and left-pad the batch. ids, mask: [B, T]."""
        tok = self.loaded.tokenizer
        texts = [tok.apply_chat_template(r.messages, add_generation_prompt=True, tokenize=False)
                 for r in requests]
        # Over-long prompts lose their oldest tokens, keeping the question and the
        # generation prompt at the end, and leave room for the answer in the context window.
        tok.truncation_side = "left"
        longest = max(r.max_new_tokens for r in requests)
        enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False,
                  truncation=True, max_length=self.prompt_budget(longest))
        for req, mask in zip(requests, enc["attention_mask"]):
            req.metrics.prompt_tokens = int(mask.sum())
        return {k: v.to(self.loaded.device) for k, v in enc.items()}

    def prompt_budget(self, max_new_tokens: int) -> int:
        window = getattr(self.loaded.model.config, "max_position_embeddings", None) or 10**6
        return max(16, min(self.config.max_prompt_tokens, window - max_new_tokens))

    def run(self, batch: Batch) -> list[RowState]:
        """Generate for every row; rows stream as they go. Returns the rows' final state."""
        rows = [RowState(r) for r in batch.requests]
        inputs = self.encode(batch.requests)
        gen_config = self._generation_config(batch)
        eos = set() if batch.sampling.ignore_eos else self.eos_ids
        streamer = BatchStreamer(rows, self.loaded.tokenizer, eos)
        stopping = StoppingCriteriaList([RowStopping(rows)])
        with torch.inference_mode(), self._adapter_context(batch) as extra:
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
    def _adapter_context(self, batch: Batch) -> Iterator[dict[str, object]]:
        keys = batch.adapter_keys
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
