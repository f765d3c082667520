"""The waiting queue of the continuous-batching engine: who is admitted next. No torch here.

Requests wait ordered by (priority, arrival): interactive traffic (chat, API) before batch
work (eval), first come first served within a class. The engine asks, once per step, for as
many requests as it has free slots (``take``); a request whose adapter is held for an adapter
operation is skipped, not dropped. Sampling settings no longer matter here: every row of a
step samples with its own settings, so chat and eval rows share steps.
"""
from __future__ import annotations

import bisect
import itertools
import threading
import time
from collections.abc import Callable

from workbench.config import EngineConfig
from workbench.engine.request import Priority, Request
from workbench.errors import BusyError

_order = itertools.count()


class Scheduler:
    """A bounded priority queue of waiting requests; thread-safe."""

    def __init__(self, config: EngineConfig) -> None:
        self.config = config
        # Sorted by key: (priority, arrival, insertion order).
        self._waiting: list[tuple[tuple[int, float, int], Request]] = []
        self._cond = threading.Condition()

    # ---- callers' side -------------------------------------------------------------------
    def add(self, request: Request) -> None:
        """Queue a request, or refuse it at once when the queue is full."""
        with self._cond:
            if len(self._waiting) >= self.config.max_queue:
                raise BusyError(
                    f"The engine is busy: {len(self._waiting)} requests are already waiting "
                    f"(limit {self.config.max_queue}). Try again in a moment."
                )
            self._insert(request)

    def requeue(self, request: Request) -> None:
        """Put a preempted request back; it keeps its place by arrival, past the size limit."""
        with self._cond:
            self._insert(request)

    def _insert(self, request: Request) -> None:
        key = (int(request.priority), request.arrival, next(_order))
        bisect.insort(self._waiting, (key, request), key=lambda e: e[0])
        self._cond.notify_all()

    def num_waiting(self) -> int:
        with self._cond:
            return len(self._waiting)

    def adapters_waiting(self) -> set[str]:
        with self._cond:
            return {r.adapter_key for _, r in self._waiting}

    def wake(self) -> None:
        """Wake a worker blocked in ``wait`` (shutdown, cancel, adapter operation)."""
        with self._cond:
            self._cond.notify_all()

    # ---- the worker's side -----------------------------------------------------------------
    def wait(self, timeout: float) -> bool:
        """Block up to ``timeout`` s until something is waiting; True if anything is."""
        with self._cond:
            if not self._waiting:
                self._cond.wait(timeout)
            return bool(self._waiting)

    def wait_to_fill(self, slots: int, admissible: Callable[[Request], bool]) -> None:
        """Idle engine: give a burst up to ``max_wait_ms`` from its first arrival to gather,
        so requests sent together share one prefill instead of the first one running alone."""
        with self._cond:
            if not self._waiting:
                return
            deadline = min(r.arrival for _, r in self._waiting) + self.config.max_wait_ms / 1000.0
            while sum(1 for _, r in self._waiting if admissible(r)) < slots:
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                self._cond.wait(left)

    def take(self, n: int, admissible: Callable[[Request], bool]) -> list[Request]:
        """Remove and return up to ``n`` admissible requests, best priority first."""
        with self._cond:
            chosen: list[Request] = []
            kept: list[tuple[tuple[int, float, int], Request]] = []
            for entry in self._waiting:
                if len(chosen) < n and admissible(entry[1]):
                    chosen.append(entry[1])
                else:
                    kept.append(entry)
            self._waiting = kept
            return chosen

    def best_waiting(self, admissible: Callable[[Request], bool]) -> list[Priority]:
        """Priorities of the admissible waiting requests, best first."""
        with self._cond:
            return [r.priority for _, r in self._waiting if admissible(r)]

    def pop_cancelled(self) -> list[Request]:
        """Remove requests cancelled while queued, so they never reach the model; the
        engine finishes them."""
        with self._cond:
            gone = [r for _, r in self._waiting if r.cancelled]
            if gone:
                self._waiting = [e for e in self._waiting if not e[1].cancelled]
            return gone

    def drain(self) -> list[Request]:
        """Remove every waiting request (shutdown, dead worker); the caller fails them."""
        with self._cond:
            taken = [r for _, r in self._waiting]
            self._waiting.clear()
            return taken
