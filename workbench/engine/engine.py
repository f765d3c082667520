"""The batched engine: a worker thread looping schedule → run → update.

Callers on any thread submit requests and read their streams. Adapter operations are queued
as work items and run by the worker between batches, so a request in flight never sees its
adapter change.
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from workbench.config import EngineConfig
from workbench.engine import lora
from workbench.engine.request import (BASE_ADAPTER, Completion, Request, RequestStatus,
                                      SamplingParams)
from workbench.engine.runner import ModelRunner, finish_rows
from workbench.engine.scheduler import Batch, Scheduler
from workbench.errors import AdapterError, InputError, UnknownNameError, WorkbenchError
from workbench.models.loaded import LoadedModel

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class RequestSpec:
    """One prompt for generate_many."""

    # Chat messages, as for submit.
    messages: list[dict[str, str]]
    # Adapter name, or None for base.
    adapter: str | None = None
    # Cap on generated tokens.
    max_new_tokens: int = 128
    # Decoding settings (greedy by default).
    sampling: SamplingParams = field(default_factory=SamplingParams)


@dataclass
class EngineStats:
    """Counters for the status bar and the metrics endpoint."""

    # Batches run since start.
    batches: int = 0
    # Requests finished, cancelled or failed since start.
    completed: int = 0
    # Tokens generated since start.
    tokens: int = 0
    # Size of the last batch.
    last_batch_size: int = 0
    # Prompt tokens of finished requests, and how many of them the prefix cache served.
    prompt_tokens: int = 0
    cached_tokens: int = 0


class Engine:
    """Serves one base model and its LoRA adapters to many callers."""

    def __init__(self, loaded: LoadedModel, config: EngineConfig | None = None) -> None:
        self.loaded = loaded
        self.config = config or EngineConfig()
        self.scheduler = Scheduler(self.config)
        self.runner = ModelRunner(loaded, self.config)
        self.stats = EngineStats()
        self._ops: queue.Queue[tuple[Callable[[], object], Future]] = queue.Queue()
        self._running: list[Request] = []
        self._requests: dict[str, Request] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._adapter_names: list[str] = []  # readable from any thread without touching peft
        # Held while admitting a request and while removing an adapter, so no request for an
        # adapter can slip into the queue as that adapter goes away.
        self._admit = threading.Lock()

    # ---- lifecycle -------------------------------------------------------------------
    def start(self) -> "Engine":
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="engine-worker", daemon=True)
            self._thread.start()
        return self

    def shutdown(self, timeout: float = 30.0) -> None:
        """Stop the worker; waiting requests fail with a clear message, running ones finish."""
        self._stop.set()
        self.scheduler.wake()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        for req in self.scheduler.drain():
            self._fail(req, "The engine shut down before this request ran.")

    def __enter__(self) -> "Engine":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # ---- the loop: schedule → run → update ---------------------------------------------
    def _loop(self) -> None:
        while not self._stop.is_set():
            self._run_ops()
            batch = self.scheduler.next_batch(timeout=0.05)
            if batch is None:
                continue
            self._step(batch)

    def _step(self, batch: Batch) -> None:
        self._running = list(batch.requests)
        for req in batch.requests:
            req.status = RequestStatus.RUNNING
        start = time.monotonic()
        try:
            rows = self.runner.run(batch)
        except Exception as exc:  # a bad batch must not take the worker down
            log.exception("batch failed")
            lora.clear_stale_adapter_hooks(self.runner.model)
            for req in batch.requests:
                self._fail(req, f"Generation failed: {exc}")
        else:
            finish_rows(rows, start)
            self._update_stats(batch)
        finally:
            self._running = []
            for req in batch.requests:
                self._requests.pop(req.request_id, None)

    def _update_stats(self, batch: Batch) -> None:
        self.stats.batches += 1
        self.stats.completed += len(batch.requests)
        self.stats.tokens += sum(r.metrics.completion_tokens for r in batch.requests)
        self.stats.last_batch_size = len(batch.requests)
        self.stats.prompt_tokens += sum(r.metrics.prompt_tokens for r in batch.requests)
        self.stats.cached_tokens += sum(r.metrics.cached_tokens for r in batch.requests)

    def _fail(self, req: Request, message: str) -> None:
        req.status, req.error, req.finish_reason = RequestStatus.FAILED, message, "error"
        req.metrics.total_ms = req.elapsed_ms()
        req.stream.put(None)
        req.done_event.set()
        self._requests.pop(req.request_id, None)

    def _run_ops(self) -> None:
        while True:
            try:
                fn, fut = self._ops.get_nowait()
            except queue.Empty:
                return
            try:
                fut.set_result(fn())
            except BaseException as exc:  # handed to the caller, never kills the worker
                fut.set_exception(exc)

    def call_between_batches(self, fn: Callable[[], T], timeout: float = 120.0) -> T:
        """Run ``fn`` on the worker thread between two batches and return its result."""
        if not self.alive:
            return fn()
        fut: Future = Future()
        self._ops.put((fn, fut))
        self.scheduler.wake()
        return fut.result(timeout)

    # ---- requests ----------------------------------------------------------------------
    def submit(self, messages: list[dict[str, str]], adapter: str | None = None,
               sampling: SamplingParams | None = None, max_new_tokens: int = 128) -> Request:
        """Queue a chat request; raises BusyError when the queue is full."""
        self._check_messages(messages)
        adapter = None if adapter in (None, "", BASE_ADAPTER) else adapter
        if not 1 <= max_new_tokens <= self.config.max_new_tokens_limit:
            raise InputError(f"max_new_tokens must be between 1 and "
                             f"{self.config.max_new_tokens_limit}, not {max_new_tokens}.")
        if self._stop.is_set():
            raise WorkbenchError("The engine is shutting down; no new requests are accepted.")
        req = Request(messages=messages, adapter=adapter, sampling=sampling or SamplingParams(),
                      max_new_tokens=max_new_tokens)
        with self._admit:
            if adapter is not None and adapter not in self._adapter_names:
                raise UnknownNameError("adapter", adapter, [BASE_ADAPTER, *self._adapter_names])
            self.scheduler.add(req)  # BusyError propagates; nothing was recorded yet
            self._requests[req.request_id] = req
        return req

    @staticmethod
    def _check_messages(messages: list[dict[str, str]]) -> None:
        if not messages or not any(m.get("role") == "user" and str(m.get("content", "")).strip()
                                   for m in messages):
            raise InputError("The conversation needs at least one non-empty user message.")
        for m in messages:
            if m.get("role") not in ("system", "user", "assistant"):
                raise InputError(f"Unknown chat role {m.get('role')!r}; use system, user or assistant.")

    def stream(self, req: Request, timeout: float | None = None) -> Iterator[str]:
        """Yield the request's text pieces as they are generated."""
        while True:
            piece = req.stream.get(timeout=timeout)
            if piece is None:
                return
            yield piece

    def cancel(self, request_id: str) -> bool:
        """Cancel a queued or running request; False if it is unknown or already done."""
        req = self._requests.get(request_id)
        if req is None or req.status.is_done:
            return False
        req.cancel()
        self.scheduler.wake()
        return True

    def generate(self, messages: list[dict[str, str]], adapter: str | None = None,
                 max_new_tokens: int = 128, sampling: SamplingParams | None = None) -> Completion:
        req = self.submit(messages, adapter, sampling, max_new_tokens)
        req.done_event.wait()
        return Completion.of(req)

    def generate_many(self, specs: Iterable[RequestSpec],
                      on_done: Callable[[int, Completion], None] | None = None) -> list[Completion]:
        """Run many prompts as mixed batches; ``on_done(index, completion)`` fires as each ends.

        Submission keeps at most half the queue filled, so a large eval never trips the busy
        error meant for interactive callers.
        """
        specs = list(specs)
        results: list[Completion | None] = [None] * len(specs)
        window = max(1, self.config.max_queue // 2)
        inflight: dict[int, Request] = {}
        nxt = 0
        while nxt < len(specs) or inflight:
            while nxt < len(specs) and len(inflight) < window:
                s = specs[nxt]
                inflight[nxt] = self.submit(s.messages, s.adapter, s.sampling, s.max_new_tokens)
                nxt += 1
            self._collect(inflight, results, on_done)
        return [r for r in results if r is not None]

    @staticmethod
    def _collect(inflight: dict[int, Request], results: list, on_done: Callable | None) -> None:
        first = next(iter(inflight.values()))
        first.done_event.wait(0.5)
        for idx, req in list(inflight.items()):
            if req.done_event.is_set():
                results[idx] = Completion.of(inflight.pop(idx))
                if on_done is not None:
                    on_done(idx, results[idx])

    # ---- adapters ----------------------------------------------------------------------
    @property
    def adapters(self) -> list[str]:
        return list(self._adapter_names)

    def busy_adapters(self) -> set[str]:
        running = {r.adapter_key for r in self._running}
        return running | self.scheduler.adapters_waiting()

    def load_adapter(self, name: str, path: str | Path) -> None:
        """Load a PEFT adapter folder under ``name``, between batches."""
        self.call_between_batches(lambda: lora.attach_adapter(self.runner, name, Path(path)))
        self._adapter_names = lora.loaded_adapters(self.runner)

    def replace_adapter(self, name: str, new_path: str | Path, old_path: str | Path) -> None:
        """Serve ``new_path`` under ``name`` instead of ``old_path``, between batches.

        On failure the old version is attached again (see ``lora.replace_adapter``); the
        name list is refreshed either way, so it never promises an adapter that is gone.
        """
        try:
            self.call_between_batches(
                lambda: lora.replace_adapter(self.runner, name, Path(new_path), Path(old_path)))
        finally:
            self._adapter_names = lora.loaded_adapters(self.runner)

    def unload_adapter(self, name: str, drain: bool = False, timeout: float = 60.0) -> None:
        """Unload ``name``; refused while requests for it wait or run, unless ``drain``."""
        if name not in self._adapter_names:
            raise UnknownNameError("loaded adapter", name, self._adapter_names)
        self._wait_idle(name, drain, timeout)

        def op() -> None:
            with self._admit:
                if name in self.busy_adapters():
                    raise AdapterError(f"Adapter '{name}' has requests in flight; try again.")
                lora.detach_adapter(self.runner, name)
                self._adapter_names = lora.loaded_adapters(self.runner)

        self.call_between_batches(op)

    def _wait_idle(self, name: str, drain: bool, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while name in self.busy_adapters():
            if not drain:
                raise AdapterError(f"Adapter '{name}' has queued or running requests; "
                                   "wait for them or unload with drain.")
            if time.monotonic() > deadline:
                raise AdapterError(f"Adapter '{name}' still had requests after {timeout:.0f} s.")
            time.sleep(0.02)
