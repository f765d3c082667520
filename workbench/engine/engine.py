"""The continuous-batching engine: what callers on any thread use.

Callers submit requests (templated and fitted to the context budget here, on their own
thread, so a bad prompt is refused at once) and read their streams; one worker thread
(``worker.py``) runs the model step by step. Adapter operations are queued to the worker and
run between steps; one that changes an adapter waits until no admitted row uses it.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from typing import TypeVar

from workbench.config import EngineConfig
from workbench.engine import lora, memory, precision
from workbench.engine.frontend import CallerMixin, check_request
from workbench.engine.prompt import ContextLengthError
from workbench.engine.request import (BASE_ADAPTER, BASE_LABEL, EngineSnapshot, Priority, Request, RequestSpec,
                                      SamplingParams)
from workbench.engine.runner import ModelRunner
from workbench.engine.scheduler import Scheduler
from workbench.engine.stats import EngineStats
from workbench.engine.worker import AdapterOp, Worker
from workbench.errors import AdapterError, UnknownNameError, WorkbenchError
from workbench.models.loaded import LoadedModel
from workbench.models.threads import on_own_thread

log = logging.getLogger(__name__)
T = TypeVar("T")

__all__ = ["Engine", "EngineSnapshot", "EngineStats", "RequestSpec"]


class Engine(CallerMixin):
    """Serves one base model and its LoRA adapters to many callers."""

    def __init__(self, loaded: LoadedModel, config: EngineConfig | None = None) -> None:
        self.loaded = loaded
        self.config = config or EngineConfig()
        self.scheduler = Scheduler(self.config)
        # Casting the weights is parallel work: off this thread, so the worker stays the only
        # thread with an OpenMP pool (``models/threads.py``).
        self.runner = on_own_thread(lambda: ModelRunner(loaded, self.config), name="model-cast")
        # Held while admitting a request and while removing an adapter, so no request for an
        # adapter can slip into the queue as that adapter goes away.
        self._admit = threading.Lock()
        self._worker = Worker(self.runner, self.scheduler, self.config, self._admit, self._notify)
        self._requests: dict[str, Request] = {}
        self._thread: threading.Thread | None = None
        self._adapter_names: list[str] = []  # readable from any thread without touching peft
        self._draining: set[str] = set()  # being unloaded with drain: no new requests
        # Called on the worker thread with each request that ends (finished, cancelled, failed).
        self._listeners: list[Callable[[Request], None]] = []

    # ---- lifecycle -------------------------------------------------------------------
    def start(self) -> "Engine":
        memory.fix_mmap_threshold(self.config.mmap_threshold_kib)
        if self._thread is None:
            self._thread = threading.Thread(target=self._worker.run, name="engine-worker", daemon=True)
            self._thread.start()
        return self

    def shutdown(self, timeout: float = 30.0) -> None:
        """Stop the worker; requests in flight or waiting fail with a clear message."""
        self._worker.stop.set()
        self.scheduler.wake()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        with self._admit:
            waiting = self.scheduler.drain()
        for req in waiting:
            self._worker.fail(req, "The engine shut down before this request ran.")

    def __enter__(self) -> "Engine":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def stats(self) -> EngineStats:
        return self._worker.stats

    @property
    def dtype(self) -> str:
        """The compute dtype of weights, activations and keys/values ("bfloat16", "float32")."""
        return precision.dtype_name(self.runner.dtype)

    def _notify(self, req: Request) -> None:
        self._requests.pop(req.request_id, None)
        self._call_listeners(req)

    def snapshot(self) -> EngineSnapshot:
        active = self._worker.active
        return EngineSnapshot(len(active), self.scheduler.num_waiting(),
                              tuple(r.adapter_key for r in active),
                              tuple(sorted(self.scheduler.adapters_waiting())),
                              tuple(self._adapter_names),
                              self.runner.static.describe() if self.runner.static else "eager",
                              dtype=self.dtype)

    # ---- work on the worker thread ----------------------------------------------------
    def call_between_batches(self, fn: Callable[[], T], timeout: float = 120.0,
                             adapter: str | None = None) -> T:
        """Run ``fn`` on the worker thread between two steps and return its result.

        With ``adapter``, ``fn`` waits until no admitted row uses that adapter (its new
        requests wait meanwhile). If ``timeout`` passes first the operation is withdrawn:
        it never runs later. One already running is waited for.
        """
        if self._worker.dead is not None:
            raise WorkbenchError(self._worker.dead)
        if not self.alive:
            return fn()  # not started (or shut down): nothing else touches the model
        op = AdapterOp(fn, Future(), adapter)
        with self._worker.ops_lock:
            self._worker.ops.append(op)
        self.scheduler.wake()
        try:
            return op.future.result(timeout)
        except FutureTimeout:
            if op.future.cancel():
                raise AdapterError(f"The engine did not reach a point to run this adapter operation "
                                   f"within {timeout:.0f} s; it was withdrawn and will not run.") from None
            return op.future.result()  # it started just now: its outcome is the answer

    # ---- requests ----------------------------------------------------------------------
    def submit(self, messages: list[dict[str, str]], adapter: str | None = None,
               sampling: SamplingParams | None = None, max_new_tokens: int = 128,
               priority: Priority = Priority.INTERACTIVE, cut_last: bool = False,
               truncate: bool = True, request_id: str | None = None,
               affinity: str | None = None) -> Request:
        """Queue a chat request (``affinity`` picks a replica elsewhere: one engine ignores it); raises BusyError when the queue is full, InputError when
        the prompt cannot fit even with older turns dropped (and, with ``cut_last``, the
        newest message shortened), ContextLengthError when it does not fit and ``truncate``
        is off. ``request_id`` names it (the service's turn id), else one is drawn."""
        check_request(messages, max_new_tokens, self.config)
        adapter = None if adapter in (None, "", BASE_ADAPTER) else adapter
        self._check_serving()
        self._check_adapter(adapter)
        try:
            fitted = self.runner.prompter.fit(messages, self.runner.prompt_budget(max_new_tokens),
                                              self.runner.min_prefix(), cut_last, truncate)
        except ContextLengthError as exc:  # the same refusal, with the window's numbers
            raise ContextLengthError(exc.tokens, exc.budget, self.runner.context_window(),
                                     max_new_tokens) from None
        req = Request(messages=messages, adapter=adapter, sampling=sampling or SamplingParams(),
                      max_new_tokens=max_new_tokens, priority=Priority(priority),
                      truncated_turns=fitted.dropped_turns, cut_tokens=fitted.cut_tokens,
                      prompt_ids=fitted.ids,
                      prefix_len=fitted.prefix_len, arrival_step=self.stats.steps)
        if request_id:
            req.request_id = request_id
        req.metrics.prompt_tokens = len(fitted.ids)
        with self._admit:
            self._check_serving()
            self._check_adapter(adapter)
            self.scheduler.add(req)  # BusyError propagates; nothing was recorded yet
            self._requests[req.request_id] = req
        return req

    def _check_adapter(self, adapter: str | None) -> None:
        if adapter is not None and (adapter not in self._adapter_names or adapter in self._draining):
            served = [n for n in self._adapter_names if n not in self._draining]
            raise UnknownNameError("adapter", adapter, [BASE_LABEL, *served])

    def _check_serving(self) -> None:
        if self._worker.dead is not None:
            raise WorkbenchError(self._worker.dead)
        if self._worker.stop.is_set():
            raise WorkbenchError("The engine is shutting down; no new requests are accepted.")

    def cancel(self, request_id: str) -> bool:
        """Cancel a queued or running request; False if it is unknown or already done."""
        req = self._requests.get(request_id)
        if req is None or req.status.is_done:
            return False
        req.cancel()
        self.scheduler.wake()
        return True

    # ---- adapters ----------------------------------------------------------------------
    @property
    def adapters(self) -> list[str]:
        return list(self._adapter_names)

    def busy_adapters(self) -> set[str]:
        with self._worker.state_lock:
            return {r.adapter_key for r in self._worker.active} | self.scheduler.adapters_waiting()

    def _refresh_names(self) -> None:
        self._adapter_names = lora.loaded_adapters(self.runner)

    def load_adapter(self, name: str, path: str | Path, timeout: float = 120.0) -> None:
        """Load a PEFT adapter folder under ``name``, between steps."""
        def op() -> None:
            try:
                lora.attach_adapter(self.runner, name, Path(path))
            finally:
                self._refresh_names()

        self.call_between_batches(op, timeout)

    def replace_adapter(self, name: str, new_path: str | Path, old_path: str | Path,
                        timeout: float = 120.0) -> None:
        """Serve ``new_path`` under ``name`` instead of ``old_path``, once no row uses it.

        On failure the old version is attached again (see ``lora.replace_adapter``); the
        name list is refreshed either way, so it never promises an adapter that is gone.
        """
        def op() -> None:
            try:
                lora.replace_adapter(self.runner, name, Path(new_path), Path(old_path))
            finally:
                self._refresh_names()

        self.call_between_batches(op, timeout, adapter=name)

    def unload_adapter(self, name: str, drain: bool = False, timeout: float = 60.0) -> None:
        """Unload ``name``; refused while requests for it wait or run, unless ``drain``:
        then new requests for it are refused at once and those accepted finish first."""
        if name not in self._adapter_names:
            raise UnknownNameError("loaded adapter", name, self._adapter_names)
        if drain:
            with self._admit:
                self._draining.add(name)
        try:
            self._wait_idle(name, drain, timeout)

            def op() -> None:
                with self._admit:
                    if name in self.busy_adapters():
                        raise AdapterError(f"Adapter '{name}' has requests in flight; try again.")
                    try:
                        lora.detach_adapter(self.runner, name)
                    finally:
                        self._refresh_names()

            self.call_between_batches(op, timeout)
        finally:
            with self._admit:
                self._draining.discard(name)

    def _wait_idle(self, name: str, drain: bool, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while name in self.busy_adapters():
            if not drain:
                raise AdapterError(f"Adapter '{name}' has queued or running requests; "
                                   "wait for them or unload with drain.")
            if time.monotonic() > deadline:
                raise AdapterError(f"Adapter '{name}' still had requests after {timeout:.0f} s.")
            time.sleep(0.02)

