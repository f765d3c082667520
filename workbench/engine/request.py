"""The request lifecycle: what a caller submits, how it moves, what it measures.

Everything that crosses the engine boundary lives here as a dataclass. This module never
imports torch, so the scheduler and the UI can use it freely.
"""
from __future__ import annotations

import asyncio
import collections
import enum
import itertools
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

BASE_ADAPTER = "__base__"
# The one name users see for the base model (UI, CLI, API, stored results).
BASE_LABEL = "base"
# What users may type for the base model.
BASE_NAMES = (BASE_LABEL, BASE_ADAPTER)

_ids = itertools.count(1)


class RequestStatus(enum.Enum):
    WAITING = "waiting"  # in the queue, not yet scheduled
    RUNNING = "running"  # admitted: prefilling or decoding in the running batch
    FINISHED = "finished"  # stopped on EOS, max_new_tokens, a stop string or its grammar
    CANCELLED = "cancelled"  # the caller cancelled it
    FAILED = "failed"  # its step raised or the engine stopped; error holds the message

    @property
    def is_done(self) -> bool:
        return self in (RequestStatus.FINISHED, RequestStatus.CANCELLED, RequestStatus.FAILED)


class Priority(enum.IntEnum):
    """Lower runs first: interactive traffic (chat, API) before batch work (eval)."""

    INTERACTIVE = 0
    BATCH = 10


@dataclass(frozen=True)
class StructuredOutput:
    """A constraint on what a row may generate, enforced per row while decoding."""

    # JSON schema (as JSON text) the output must match.
    json_schema: str | None = None
    # The output must be exactly one of these strings.
    choice: tuple[str, ...] = ()


@dataclass(frozen=True)
class SamplingParams:
    """Decoding settings, per row."""

    # 0 means greedy decoding (the default: reproducible).
    temperature: float = 0.0
    # Nucleus sampling mass; ignored when greedy.
    top_p: float = 1.0
    # Penalty > 1 discourages repeating tokens.
    repetition_penalty: float = 1.0
    # Keep generating past EOS until max_new_tokens (benchmarks need fixed-length outputs).
    ignore_eos: bool = False
    # Seed of this request's own random generator (None: drawn per request).
    seed: int | None = None
    # Generation stops before any of these strings; they are not part of the output.
    stop: tuple[str, ...] = ()
    # Grammar the output must follow (None: free text).
    structured: StructuredOutput | None = None

    @property
    def greedy(self) -> bool:
        return self.temperature <= 0.0


@dataclass
class RequestMetrics:
    """Timings of one request, all in milliseconds from its arrival."""

    # Time spent waiting before its prefill started.
    queue_ms: float | None = None
    # Time from arrival to the first generated token.
    ttft_ms: float | None = None
    # Time from arrival to the last token.
    total_ms: float | None = None
    # Mean time between output tokens after the first.
    tpot_ms: float | None = None
    # Tokens in the templated prompt.
    prompt_tokens: int = 0
    # Prompt tokens whose keys/values came from the prefix cache (not recomputed).
    cached_tokens: int = 0
    # Tokens generated.
    completion_tokens: int = 0
    # Most rows that decoded in one step with it (itself included).
    batch_size: int = 0
    # Decode steps the engine ran between its arrival and its first token.
    ttft_steps: int | None = None
    # Times it gave its slot to interactive traffic and was recomputed later.
    preemptions: int = 0
    # Monotonic time (s) of each generated token, for inter-token latency.
    token_times: list[float] = field(default_factory=list)

    @property
    def tokens_per_s(self) -> float | None:
        """Output tokens per second of generation time (queueing excluded)."""
        if self.total_ms is None or self.completion_tokens == 0:
            return None
        gen_ms = max(self.total_ms - (self.queue_ms or 0.0), 1e-3)
        return self.completion_tokens / (gen_ms / 1000.0)


class TokenQueue:
    """A request's text pieces as the engine produces them; ``None`` marks the end.

    The engine's thread puts; a reader takes them with a blocking ``get`` (sync code) or an
    awaited ``aget`` (the API's event loop), and several queues can wake one reader
    (``watch``), so nothing polls and no thread is spent per request.
    """

    def __init__(self) -> None:
        self._items: collections.deque[str | None] = collections.deque()
        self._cond = threading.Condition()
        self._watchers: list[Callable[[], None]] = []

    def put(self, piece: str | None) -> None:
        with self._cond:
            self._items.append(piece)
            self._cond.notify_all()
            watchers = tuple(self._watchers)
        for wake in watchers:
            wake()

    def get(self, timeout: float | None = None) -> str | None:
        """The next piece, waiting for it; raises ``queue.Empty`` after ``timeout`` seconds."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._items, timeout):
                raise queue.Empty
            return self._items.popleft()

    def get_nowait(self) -> str | None:
        with self._cond:
            if not self._items:
                raise queue.Empty
            return self._items.popleft()

    def empty(self) -> bool:
        with self._cond:
            return not self._items

    def watch(self, wake: Callable[[], None]) -> Callable[[], None]:
        """Call ``wake()`` (on the engine's thread) after every put; returns the un-watch."""
        with self._cond:
            self._watchers.append(wake)

        def unwatch() -> None:
            with self._cond:
                if wake in self._watchers:
                    self._watchers.remove(wake)
        return unwatch

    async def aget(self) -> str | None:
        """The next piece, awaited on the running event loop."""
        loop = asyncio.get_running_loop()
        while True:
            ready = asyncio.Event()
            with self._cond:
                if self._items:
                    return self._items.popleft()
                unwatch = self._watch_from_loop(loop, ready)
            try:
                await ready.wait()
            finally:
                unwatch()

    def _watch_from_loop(self, loop: asyncio.AbstractEventLoop, ready: asyncio.Event) -> Callable[[], None]:
        def wake() -> None:
            try:
                loop.call_soon_threadsafe(ready.set)
            except RuntimeError:  # the loop closed (server shutting down): nobody to wake
                pass
        self._watchers.append(wake)  # the caller holds the condition

        def unwatch() -> None:
            with self._cond:
                if wake in self._watchers:
                    self._watchers.remove(wake)
        return unwatch


@dataclass
class Request:
    """One chat completion moving through the engine."""

    # Chat messages: [{"role": "system"|"user"|"assistant", "content": str}, ...].
    messages: list[dict[str, str]]
    # Adapter to run with; None means the base model.
    adapter: str | None = None
    # Decoding settings.
    sampling: SamplingParams = field(default_factory=SamplingParams)
    # Cap on generated tokens.
    max_new_tokens: int = 128
    # Scheduling class: interactive requests are admitted before batch work.
    priority: Priority = Priority.INTERACTIVE
    # Unique id, assigned at creation.
    request_id: str = field(default_factory=lambda: f"req-{next(_ids)}")
    # Where it is in its lifecycle.
    status: RequestStatus = RequestStatus.WAITING
    # Timings, filled in as it runs.
    metrics: RequestMetrics = field(default_factory=RequestMetrics)
    # Text generated so far.
    output_text: str = ""
    # Token ids generated so far.
    output_token_ids: list[int] = field(default_factory=list)
    # Whole conversation turns dropped to fit the context window.
    truncated_turns: int = 0
    # Tokens cut from the end of the newest message to fit (submit with cut_last=True).
    cut_tokens: int = 0
    # The templated prompt's token ids (set at submit, after any dropped turns).
    prompt_ids: list[int] = field(default_factory=list, repr=False)
    # Leading prompt ids that are the system message, reusable from the prefix cache (0: none).
    prefix_len: int = 0
    # Engine decode steps run before it arrived (for ttft_steps).
    arrival_step: int = 0
    # Why it failed, when status is FAILED.
    error: str | None = None
    # Why it stopped: "eos", "length", "stop", "cancelled" or "error".
    finish_reason: str | None = None
    # Monotonic arrival time in seconds.
    arrival: float = field(default_factory=time.monotonic)
    # Set by cancel(); the engine checks it every step.
    cancel_event: threading.Event = field(default_factory=threading.Event, repr=False)
    # Text pieces for streaming consumers; None marks the end.
    stream: TokenQueue = field(default_factory=TokenQueue, repr=False)
    # Set once the request is done, whatever the outcome.
    done_event: threading.Event = field(default_factory=threading.Event, repr=False)

    @property
    def adapter_key(self) -> str:
        """The name PEFT uses for this row of a mixed batch."""
        return self.adapter or BASE_ADAPTER

    def elapsed_ms(self, now: float | None = None) -> float:
        return ((now or time.monotonic()) - self.arrival) * 1000.0

    def cancel(self) -> None:
        self.cancel_event.set()

    @property
    def cancelled(self) -> bool:
        return self.cancel_event.is_set()


@dataclass(frozen=True)
class Completion:
    """What a finished request gives back to callers (eval runner, benchmark, CLI)."""

    # The request's id.
    request_id: str
    # Adapter it ran with, None for base.
    adapter: str | None
    # Generated text.
    text: str
    # Final status.
    status: RequestStatus
    # Why it stopped.
    finish_reason: str | None
    # Timings and token counts.
    metrics: RequestMetrics
    # Error message when it failed.
    error: str | None = None
    # Generated token ids.
    token_ids: tuple[int, ...] = ()
    # Whole conversation turns dropped to fit the context window.
    truncated_turns: int = 0
    # Tokens cut from the end of the newest message to fit.
    cut_tokens: int = 0

    @classmethod
    def of(cls, req: Request) -> "Completion":
        return cls(req.request_id, req.adapter, req.output_text, req.status, req.finish_reason,
                   req.metrics, req.error, tuple(req.output_token_ids), req.truncated_turns,
                   req.cut_tokens)


@dataclass(frozen=True)
class RequestSpec:
    """One prompt for generate_many (batch work: eval runs, the benchmark)."""

    # Chat messages, as for submit.
    messages: list[dict[str, str]]
    # Adapter name, or None for base.
    adapter: str | None = None
    # Cap on generated tokens.
    max_new_tokens: int = 128
    # Decoding settings (greedy by default).
    sampling: SamplingParams = field(default_factory=SamplingParams)
    # Batch work by default: interactive requests go first.
    priority: Priority = Priority.BATCH


@dataclass(frozen=True)
class EngineSnapshot:
    """What a backend is doing right now, for gauges and the Monitor tab."""

    # Requests admitted now (prefilling, decoding or preempted), and waiting to be admitted.
    running: int
    waiting: int
    # Adapter keys of running and of waiting requests.
    running_adapters: tuple[str, ...]
    waiting_adapters: tuple[str, ...]
    # Adapters loaded now.
    loaded_adapters: tuple[str, ...]
    # How decode steps run (``StaticDecoder.describe``; "eager" without decode graphs).
    decode: str = "eager"
    # The engine's compute dtype ("bfloat16", "float32"; empty for a remote server).
    dtype: str = ""
    # Behind several servers: each replica's state (empty for one engine or one server).
    replicas: tuple["ReplicaState", ...] = ()


@dataclass(frozen=True)
class ReplicaState:
    """One server behind a replicated backend, as the Monitor and /metrics show it."""

    url: str
    up: bool
    in_flight: int
    adapters: tuple[str, ...]
