"""Per-row streaming and stopping for one batched ``generate`` call.

transformers' own streamers handle batch size 1 only. Here every row keeps its own token
list and finish state; ``BatchStreamer.put`` receives one token per row per step and hands
each request its new text, and ``RowStopping`` tells ``generate`` which rows are done (EOS,
their own max_new_tokens, or cancelled), so a batch mixes requests of different lengths.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch
from transformers import PreTrainedTokenizerBase, StoppingCriteria
from transformers.generation.streamers import BaseStreamer

from workbench.engine.request import Request


@dataclass
class RowState:
    """Decoding progress of one row of the batch."""

    # The request this row serves.
    request: Request
    # Tokens generated so far.
    token_ids: list[int] = field(default_factory=list)
    # Characters of decoded text already sent to the request's stream.
    sent_chars: int = 0
    # Set once the row stops; later tokens for it are padding.
    finish_reason: str | None = None
    # Monotonic time of the first and the last generated token.
    first_token_at: float | None = None
    last_token_at: float | None = None


class BatchStreamer(BaseStreamer):
    """Routes each step's tokens [B] to the rows' requests as text deltas."""

    def __init__(self, rows: list[RowState], tokenizer: PreTrainedTokenizerBase,
                 eos_ids: set[int]) -> None:
        self.rows = rows
        self.tokenizer = tokenizer
        self.eos_ids = eos_ids
        self._prompt_seen = False

    def put(self, value: torch.Tensor) -> None:
        if not self._prompt_seen:  # generate() first sends the prompt ids [B, T]
            self._prompt_seen = True
            return
        now = time.monotonic()
        tokens = value.view(-1).tolist()  # one new token per row: [B]
        for row, tok in zip(self.rows, tokens):
            if row.finish_reason is None:
                self._advance(row, tok, now)

    def _advance(self, row: RowState, tok: int, now: float) -> None:
        if row.first_token_at is None:
            row.first_token_at = now
        row.last_token_at = now
        if row.request.cancelled:
            row.finish_reason = "cancelled"
            return
        if tok in self.eos_ids:
            row.finish_reason = "eos"
            return
        row.token_ids.append(tok)
        self._emit(row)
        if len(row.token_ids) >= row.request.max_new_tokens:
            row.finish_reason = "length"

    def _emit(self, row: RowState) -> None:
        text = self.tokenizer.decode(row.token_ids, skip_special_tokens=True)
        # A trailing U+FFFD is half of a multi-byte character: wait for the rest.
        if text.endswith("\ufffd"):
            return
        delta = text[row.sent_chars:]
        if delta:
            row.sent_chars = len(text)
            row.request.output_text = text
            row.request.stream.put(delta)

    def end(self) -> None:
        for row in self.rows:
            if row.finish_reason is None:
                row.finish_reason = "length"
            full = self.tokenizer.decode(row.token_ids, skip_special_tokens=True)
            if len(full) > row.sent_chars:
                row.request.stream.put(full[row.sent_chars:])
                row.sent_chars = len(full)
            row.request.output_text = full


class RowStopping(StoppingCriteria):
    """Marks rows finished by the streamer (EOS, length, cancel) as done for generate."""

    def __init__(self, rows: list[RowState]) -> None:
        self.rows = rows

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs: object) -> torch.Tensor:
        # input_ids: [B, T]  ->  done: [B]
        done = [row.finish_reason is not None or row.request.cancelled for row in self.rows]
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)
