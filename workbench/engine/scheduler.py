"""The waiting queue of the continuous-batching engine: who is admitted next. No torch here.

Requests wait ordered by (priority, arrival): interactive traffic (chat, API) before batch
work (eval), first come first served within a class. The engine asks, once per step, for as
many requests as it has free slots (``take``); a request whose adapter is held for an adapter
operation is skipped, not dropped. Sampling settings no longer matter here: every row of a
step samples with its own settings, so chat and eval rows share steps.

Slots are not the only limit: the running batch's keys/values take memory for every row at
the batch's length (rows are right-aligned, see ``slots.py``), so ``KVBudget`` caps rows ×
longest row. A request that does not fit waits at the head of its class until rows leave, and
nothing behind it overtakes it (so a long prompt is never starved by short ones). A request
alone always fits: a prompt larger than the budget still runs, by itself.
"""
from __future__ import annotations

import bisect
import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from workbench.config import EngineConfig
from workbench.engine.request import Priority, Request
from workbench.errors import BusyError

_order = itertools.count()


def footprint(request: Request) -> int:
    """Tokens a request's row may hold by its end: its prompt and every token it may add."""
    return len(request.prompt_ids) + request.max_new_tokens


@dataclass(frozen=True)
class KVBudget:
    """Memory for the running batch's keys/values: rows × longest row × bytes per token."""

    # Keys and values of one token, all layers.
    bytes_per_token: int
    # The cap in bytes; 0: no cap.
    limit_bytes: int

    def fits(self, lengths: list[int]) -> bool:
        """Whether rows of these footprints (tokens) fit together; one row always does."""
        if self.limit_bytes <= 0 or len(lengths) <= 1:
            return True
        return len(lengths) * max(lengths) * self.bytes_per_token <= self.limit_bytes


def choose_victims(free: int, waiting: list[Request], batch: list[Request], prefilling: list[Request],
                   budget: KVBudget) -> list[int]:
    """Batch-priority rows of the running ``batch`` (indices, newest first) to park so the
    ``waiting`` interactive requests get slots, and the first of them memory."""
    candidates = [i for i, r in enumerate(batch) if r.priority > Priority.INTERACTIVE]
    victims: list[int] = []

    def served() -> bool:
        if max(free, 0) + len(victims) < len(waiting):
            return False
        kept = [footprint(r) for i, r in enumerate(batch) if i not in victims]
        return budget.fits([*kept, *map(footprint, prefilling), footprint(waiting[0])])

    while candidates and not served():
        victims.append(candidates.pop())
    return victims


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

    def take(self, n: int, admissible: Callable[[Request], bool],
             fits: Callable[[Request], bool] | None = None) -> list[Request]:
        """Remove and return up to ``n`` admissible requests, best priority first; the first
        admissible one that ``fits`` refuses (memory) ends the taking."""
        with self._cond:
            chosen: list[Request] = []
            kept: list[tuple[tuple[int, float, int], Request]] = []
            blocked = False
            for entry in self._waiting:
                req = entry[1]
                if not blocked and len(chosen) < n and admissible(req):
                    if fits is None or fits(req):
                        chosen.append(req)
                        continue
                    blocked = True
                kept.append(entry)
            self._waiting = kept
            return chosen

    def waiting_of(self, priority: Priority, admissible: Callable[[Request], bool]) -> list[Request]:
        """The admissible waiting requests of one priority, in the order they will be taken."""
        with self._cond:
            return [r for _, r in self._waiting if r.priority == priority and admissible(r)]

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
