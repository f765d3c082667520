"""Dynamic batching: which waiting requests run together next. No torch here.

FCFS: the oldest waiting request decides the batch's sampling settings; younger requests
with the same settings join it until ``max_batch_size``. Once a request is pending, the
scheduler waits up to ``max_wait_ms`` for the batch to fill, so a burst of arrivals shares
one generate call instead of the first one running alone.
"""
from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass

from workbench.config import EngineConfig
from workbench.engine.request import Request, RequestStatus, SamplingParams
from workbench.errors import BusyError


@dataclass
class Batch:
    """Requests that share one generate call."""

    # The rows, in arrival order.
    requests: list[Request]
    # Their common decoding settings.
    sampling: SamplingParams

    @property
    def adapter_keys(self) -> list[str]:
        return [r.adapter_key for r in self.requests]


class Scheduler:
    """A bounded FCFS queue that hands out batches; thread-safe."""

    def __init__(self, config: EngineConfig) -> None:
        self.config = config
        self._waiting: deque[Request] = deque()
        self._cond = threading.Condition()

    def add(self, request: Request) -> None:
        """Queue a request, or refuse it at once when the queue is full."""
        with self._cond:
            if len(self._waiting) >= self.config.max_queue:
                raise BusyError(
                    f"The engine is busy: {len(self._waiting)} requests are already waiting "
                    f"(limit {self.config.max_queue}). Try again in a moment."
                )
            self._waiting.append(request)
            self._cond.notify_all()

    def num_waiting(self) -> int:
        with self._cond:
            return len(self._waiting)

    def adapters_waiting(self) -> set[str]:
        with self._cond:
            return {r.adapter_key for r in self._waiting}

    def wake(self) -> None:
        """Wake a worker blocked in next_batch (shutdown, adapter operation)."""
        with self._cond:
            self._cond.notify_all()

    def next_batch(self, timeout: float = 0.1) -> Batch | None:
        """Block up to ``timeout`` s for a request, then gather a batch for it."""
        with self._cond:
            self._drop_cancelled()
            if not self._waiting:
                self._cond.wait(timeout)
                self._drop_cancelled()
                if not self._waiting:
                    return None
            self._wait_to_fill()
            return self._take_batch()

    def _wait_to_fill(self) -> None:
        deadline = self._waiting[0].arrival + self.config.max_wait_ms / 1000.0
        while self._count_compatible() < self.config.max_batch_size:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self._cond.wait(left)

    def _count_compatible(self) -> int:
        head = self._waiting[0].sampling
        return sum(1 for r in self._waiting if r.sampling == head)

    def _take_batch(self) -> Batch | None:
        self._drop_cancelled()
        if not self._waiting:
            return None
        sampling = self._waiting[0].sampling
        chosen: list[Request] = []
        rest: deque[Request] = deque()
        for req in self._waiting:
            if req.sampling == sampling and len(chosen) < self.config.max_batch_size:
                chosen.append(req)
            else:
                rest.append(req)
        self._waiting = rest
        return Batch(chosen, sampling)

    def _drop_cancelled(self) -> None:
        """Finish requests cancelled while queued, so they never reach the model."""
        kept: deque[Request] = deque()
        for req in self._waiting:
            if req.cancelled:
                req.status = RequestStatus.CANCELLED
                req.finish_reason = "cancelled"
                req.metrics.total_ms = req.elapsed_ms()
                req.stream.put(None)
                req.done_event.set()
            else:
                kept.append(req)
        self._waiting = kept

    def drain(self) -> list[Request]:
        """Remove every waiting request (shutdown); the caller fails them."""
        with self._cond:
            taken = list(self._waiting)
            self._waiting.clear()
            return taken
