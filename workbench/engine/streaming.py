"""Incremental detokenization and stop strings, one ``TextStream`` per row.

Re-decoding a row's whole output every step costs O(n) per token (O(n²) per answer). As in
vLLM, each step decodes only a short window: the ids from ``prefix_offset`` (a few tokens
already shown, so byte-level and SentencePiece merges see their left context) to the end,
minus the text of that window without the new ids. A window ending in U+FFFD is half of a
multi-byte character; its text waits for the next token.

Stop strings: the output ends just before the first stop string, which is never shown. Text
that could be the start of a stop string is held back until the next tokens decide.
"""
from __future__ import annotations

from transformers import PreTrainedTokenizerBase


class TextStream:
    """The text of one row's generated ids, released as deltas."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase, stop: tuple[str, ...] = ()) -> None:
        self.tokenizer = tokenizer
        self.stop = tuple(s for s in stop if s)
        self.ids: list[int] = []
        self.text = ""  # all text decoded so far (cut at a stop string once one is seen)
        self.sent = 0  # characters of text already released
        self.stopped = False
        self._prefix_offset = 0
        self._read_offset = 0

    def push(self, token_id: int) -> str:
        """Add one generated id; returns the text now safe to show (maybe empty)."""
        self.ids.append(token_id)
        self._decode_window()
        if self.stop:
            self._check_stop()
        end = len(self.text) if self.stopped else len(self.text) - self._held_back()
        return self._release(end)

    def flush(self) -> str:
        """The row ended: release whatever was held back (no stop string can complete now)."""
        if not self.stopped:
            window = self._window_text(self._prefix_offset, len(self.ids))
            done = self._window_text(self._prefix_offset, self._read_offset)
            if len(window) > len(done):  # a trailing partial character, shown as decoded
                self.text += window[len(done):]
                self._read_offset = len(self.ids)
        return self._release(len(self.text))

    def _window_text(self, start: int, end: int) -> str:
        if start >= end:
            return ""
        return self.tokenizer.decode(self.ids[start:end], skip_special_tokens=True)

    def _decode_window(self) -> None:
        prefix = self._window_text(self._prefix_offset, self._read_offset)
        full = self._window_text(self._prefix_offset, len(self.ids))
        if len(full) > len(prefix) and not full.endswith("\ufffd"):
            self.text += full[len(prefix):]
            self._prefix_offset, self._read_offset = self._read_offset, len(self.ids)

    def _check_stop(self) -> None:
        longest = max(map(len, self.stop))
        start = max(0, self.sent - longest)
        hits = [i for i in (self.text.find(s, start) for s in self.stop) if i >= 0]
        if hits:
            self.text = self.text[:min(hits)]
            self.stopped = True

    def _held_back(self) -> int:
        """Length of the longest tail of the text that begins some stop string."""
        for n in range(min(len(self.text) - self.sent, max(map(len, self.stop), default=0)), 0, -1):
            tail = self.text[-n:]
            if any(s.startswith(tail) for s in self.stop):
                return n
        return 0

    def _release(self, end: int) -> str:
        end = max(end, self.sent)
        delta = self.text[self.sent:end]
        self.sent = end
        return delta
