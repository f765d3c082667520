"""One chat turn through the service: the typed request every face sends, the handle it reads.

Every face (the Chat tab's panes, the customer view, the arena, ``workbench chat``,
``/v1/chat/completions`` and ``/v1/completions``) builds a :class:`TurnRequest` and calls
``Workbench.serve_turn``; what comes back is a :class:`TurnHandle` that streams (one sync and
one async iterator over the request's token queue), cancels, and reports metrics. When the
turn ends the service records it once, as a :class:`ServedTurn`.
"""
from __future__ import annotations

import enum
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from workbench.engine.request import Priority, Request, RequestMetrics, SamplingParams, TokenQueue
from workbench.service.variants import Variant

# The engine's finish reasons, as OpenAI names them.
OPENAI_FINISH = {"eos": "stop", "stop": "stop", "length": "length"}


class Face(str, enum.Enum):
    """Where a turn came from (stored with it, shown in reports)."""

    CHAT = "chat"  # the Chat tab's side-by-side panes
    CUSTOMER = "customer"  # the Chat tab's customer view, through an A/B route
    ARENA = "arena"  # the blind arena
    CLI = "cli"  # workbench chat
    API = "api"  # /v1/chat/completions and /v1/completions


class Fit(str, enum.Enum):
    """What to do with a conversation too long for the context window."""

    REFUSE = "refuse"  # an error naming the numbers (the API's default)
    DROP_TURNS = "drop_turns"  # drop the oldest whole turns (the API's "truncate": true)
    CUT_LAST = "cut_last"  # drop turns, then cut the newest message's end (the page and CLI)


@dataclass(frozen=True)
class TurnRequest:
    """One turn a face asks the service for."""

    # Variant, adapter name, name@version, A/B route name, or base.
    model: str
    # The customer's side: earlier turns and the newest message, optionally headed by the
    # caller's own system message (API clients may send one).
    conversation: tuple[dict[str, str], ...]
    face: Face
    # Customer language and store region (None: unknown); grounded: add the region's policy.
    lang: str | None = None
    region: str | None = None
    grounded: bool = True
    sampling: SamplingParams = field(default_factory=SamplingParams)
    # Cap on generated tokens (None: the service's default for the face).
    max_new_tokens: int | None = None
    # The user or session key: A/B route arms stick to it. Never stored raw.
    user: str | None = None
    fit: Fit = Fit.CUT_LAST
    # "chat" or "text": what the answer's id says (chatcmpl-… or cmpl-…).
    kind: str = "chat"
    # Which pane or side of the face ("left", "right", "a", "b"; "" for one-pane faces).
    pane: str = ""
    conversation_id: str = ""
    priority: Priority = Priority.INTERACTIVE

    @classmethod
    def question(cls, model: str, text: str, face: Face, history: Sequence[dict[str, str]] = (),
                 **fields: Any) -> "TurnRequest":
        """A customer's question after the conversation so far (what the chat faces send)."""
        turns = tuple({"role": m["role"], "content": m["content"]} for m in history
                      if m.get("role") in ("user", "assistant"))
        return cls(model, (*turns, {"role": "user", "content": text}), face, **fields)

    @property
    def last_message(self) -> str:
        """The customer's newest message (what a record of the turn keeps)."""
        return next((m["content"] for m in reversed(self.conversation) if m["role"] == "user"), "")


def new_turn_id(kind: str) -> str:
    """``chatcmpl-…`` for chat turns, ``cmpl-…`` for text completions: one id from the engine
    to the response, the record and the feedback that refers to it."""
    return ("chatcmpl-" if kind == "chat" else "cmpl-") + uuid.uuid4().hex[:24]


@dataclass(frozen=True)
class ServedTurn:
    """A finished turn, as the service hands it to its recorder."""

    turn_id: str
    turn: TurnRequest
    variant: Variant
    model_name: str
    answer: str
    finish_reason: str | None
    error: str | None
    metrics: RequestMetrics
    created: float = field(default_factory=time.time)


class TurnHandle:
    """A turn in flight: stream it, cancel it, read its metrics when it ends."""

    def __init__(self, turn: TurnRequest, variant: Variant, request: Request,
                 cancel: Callable[["TurnHandle", str], bool]) -> None:
        self.turn, self.variant, self.request = turn, variant, request
        self.created = int(time.time())
        self._cancel = cancel
        self._cancelled = False  # once: the engine ends a cancelled request at its next step

    @property
    def id(self) -> str:
        return self.request.request_id

    @property
    def queue(self) -> TokenQueue:
        return self.request.stream

    # ---- reading -----------------------------------------------------------------------------
    def __iter__(self) -> Iterator[str]:
        """The answer's text pieces; a reader that stops early cancels the turn."""
        ended = False
        try:
            while (piece := self.queue.get()) is not None:
                yield piece
            ended = True
        finally:
            if not ended:
                self.cancel("the reader stopped before the end")

    async def __aiter__(self) -> AsyncIterator[str]:
        ended = False
        try:
            while (piece := await self.queue.aget()) is not None:
                yield piece
            ended = True
        finally:
            if not ended:
                self.cancel("the reader stopped before the end")

    def text(self) -> str:
        """Read the whole answer (blocking); what was generated, also after a failure."""
        for _ in self:
            pass
        return self.request.output_text

    def cancel(self, why: str = "cancelled") -> bool:
        """Stop the turn (its slot goes to the next request); False if it had ended or was
        cancelled already."""
        if self._cancelled:
            return False
        self._cancelled = self._cancel(self, why)
        return self._cancelled

    # ---- outcome ------------------------------------------------------------------------------
    @property
    def done(self) -> bool:
        return self.request.done_event.is_set()

    @property
    def metrics(self) -> RequestMetrics:
        return self.request.metrics

    @property
    def finish_reason(self) -> str | None:
        """Why it stopped, as OpenAI names it ("stop", "length"; None when it failed)."""
        return OPENAI_FINISH.get(self.request.finish_reason or "")

    @property
    def failure(self) -> str | None:
        """The engine's message when the turn failed, else None."""
        if self.request.finish_reason == "error" or self.request.status.value == "failed":
            return self.request.error or "Generation failed."
        return None


def stream_together(handles: Sequence[TurnHandle]) -> Iterator[list[tuple[int, str]]]:
    """Several turns read as one stream: each item is every (index, piece) that arrived since
    the last one, so a page redraws once per wake-up, not once per token. A reader that stops
    early cancels the turns still running."""
    wake = threading.Event()
    unwatch = [h.queue.watch(wake.set) for h in handles]
    open_ = set(range(len(handles)))
    try:
        while open_:
            wake.clear()
            batch: list[tuple[int, str]] = []
            for i in sorted(open_):
                while not handles[i].queue.empty():
                    piece = handles[i].queue.get_nowait()
                    if piece is None:
                        open_.discard(i)
                        break
                    batch.append((i, piece))
            if batch or not open_:
                yield batch
            if open_:
                wake.wait()
    finally:
        for stop in unwatch:
            stop()
        for i in open_:
            handles[i].cancel("the reader stopped before the end")
