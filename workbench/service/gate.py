"""Admission of requests per adapter name against swaps of that name (one condition).

A hot-swap closes its name's gate, waits for that name's requests in flight to end, swaps,
and opens the gate; new requests for the name wait meanwhile, then resolve again, so an
unversioned name gets the new version and no request is served by a version half swapped.
"""
from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

from workbench.engine.request import Request
from workbench.errors import AdapterError, BusyError


class AdapterGate:
    """Which adapter names are being swapped, and the requests in flight per name."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.closed: set[str] = set()
        self.inflight: dict[str, dict[str, Request]] = {}

    def live(self, name: str) -> int:
        reqs = self.inflight.get(name, {})
        for rid in [r for r, req in reqs.items() if req.done_event.is_set()]:
            reqs.pop(rid)
        return len(reqs)

    def wait_open(self, name: str, deadline: float) -> bool:
        """Wait (holding ``cond``) until ``name`` is not being swapped; True if it was."""
        waited = False
        while name in self.closed:
            waited = True
            left = deadline - time.monotonic()
            if left <= 0:
                raise BusyError(f"Adapter '{name}' is being swapped; try again in a moment.")
            self.cond.wait(left)
        return waited

    def admitted(self, name: str, req: Request) -> None:
        """Count ``req`` in flight for ``name`` (holding ``cond``)."""
        self.live(name)  # drops ended requests, so the map stays small
        self.inflight.setdefault(name, {})[req.request_id] = req

    @contextlib.contextmanager
    def exclusive(self, name: str, timeout: float = 60.0) -> Iterator[None]:
        """Hold new requests for ``name`` back and wait for its requests in flight to end.

        Raises AdapterError, changing nothing, when they do not end within ``timeout``.
        """
        deadline = time.monotonic() + timeout
        with self.cond:
            self.closed.add(name)
            try:
                while self.live(name):
                    if time.monotonic() > deadline:
                        raise AdapterError(f"Adapter '{name}' still has {self.live(name)} "
                                           f"requests in flight after {timeout:.0f} s; try again.")
                    self.cond.wait(0.05)
            except BaseException:
                self._open(name)
                raise
        try:
            yield
        finally:
            with self.cond:
                self._open(name)

    def _open(self, name: str) -> None:
        self.closed.discard(name)
        self.cond.notify_all()
