"""What callers use on top of ``submit`` and ``cancel``, for the local and the remote engine.

Both engines take requests the same way and end them the same way; reading a stream,
waiting for one completion and keeping a window of many in flight are the same on top.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator

from workbench.config import EngineConfig
from workbench.engine.request import Completion, Priority, Request, RequestSpec, SamplingParams
from workbench.errors import InputError

log = logging.getLogger(__name__)


def check_request(messages: list[dict[str, str]], max_new_tokens: int, config: EngineConfig) -> None:
    """The input rule every backend applies, once per request, so a bad request fails the
    same way whichever backend and face it came through."""
    if not messages or not any(m.get("role") == "user" and str(m.get("content", "")).strip()
                               for m in messages):
        raise InputError("The conversation needs at least one non-empty user message.", "messages")
    for m in messages:
        if m.get("role") not in ("system", "user", "assistant"):
            raise InputError(f"Unknown chat role {m.get('role')!r}; use system, user or assistant.",
                             "messages")
    if not 1 <= max_new_tokens <= config.max_new_tokens_limit:
        raise InputError(f"max_tokens must be between 1 and {config.max_new_tokens_limit}, "
                         f"not {max_new_tokens}.", "max_tokens")


class CallerMixin:
    """stream / generate / generate_many and request listeners, given submit and cancel."""

    _listeners: list[Callable[[Request], None]]
    config: EngineConfig

    def submit(self, messages: list[dict[str, str]], adapter: str | None = None,
               sampling: SamplingParams | None = None, max_new_tokens: int = 128,
               priority: Priority = Priority.INTERACTIVE, cut_last: bool = False,
               truncate: bool = True, request_id: str | None = None,
               affinity: str | None = None) -> Request:
        raise NotImplementedError

    def cancel(self, request_id: str) -> bool:
        raise NotImplementedError

    def add_listener(self, fn: Callable[[Request], None]) -> None:
        """Call ``fn(request)`` once for every request that ends, whatever the outcome."""
        self._listeners.append(fn)

    def _call_listeners(self, req: Request) -> None:
        for fn in self._listeners:
            try:
                fn(req)
            except Exception:  # an observer must never break serving
                log.exception("request listener failed")

    def stream(self, req: Request, timeout: float | None = None) -> Iterator[str]:
        """Yield the request's text pieces as they are generated.

        A reader that stops early (closed generator, timeout, error in the caller) cancels
        the request, so its slot goes to the next one.
        """
        ended = False
        try:
            while True:
                piece = req.stream.get(timeout=timeout)
                if piece is None:
                    ended = True
                    return
                yield piece
        finally:
            if not ended:
                self.cancel(req.request_id)

    def generate(self, messages: list[dict[str, str]], adapter: str | None = None,
                 max_new_tokens: int = 128, sampling: SamplingParams | None = None,
                 priority: Priority = Priority.INTERACTIVE) -> Completion:
        req = self.submit(messages, adapter, sampling, max_new_tokens, priority)
        try:
            req.done_event.wait()
        finally:
            if not req.done_event.is_set():  # the caller was interrupted
                self.cancel(req.request_id)
        return Completion.of(req)

    def generate_many(self, specs: Iterable["RequestSpec"],
                      on_done: Callable[[int, Completion], None] | None = None) -> list[Completion]:
        """Run many prompts; ``on_done(index, completion)`` fires as each ends.

        At most half the queue is filled, so a large eval never trips the busy error meant
        for interactive callers, and batch priority lets chat go first. If the caller stops
        (an exception, Ctrl-C), its requests still in flight are cancelled.
        """
        specs = list(specs)
        results: list[Completion | None] = [None] * len(specs)
        window = max(1, self.config.max_queue // 2)
        inflight: dict[int, Request] = {}
        nxt = 0
        try:
            while nxt < len(specs) or inflight:
                while nxt < len(specs) and len(inflight) < window:
                    s = specs[nxt]
                    inflight[nxt] = self.submit(s.messages, s.adapter, s.sampling, s.max_new_tokens,
                                                s.priority)
                    nxt += 1
                _collect(inflight, results, on_done)
        except BaseException:
            for req in inflight.values():
                self.cancel(req.request_id)
            raise
        return [r for r in results if r is not None]


def _collect(inflight: dict[int, Request], results: list, on_done: Callable | None) -> None:
    first = next(iter(inflight.values()))
    first.done_event.wait(0.05)
    for idx, req in list(inflight.items()):
        if req.done_event.is_set():
            results[idx] = Completion.of(inflight.pop(idx))
            if on_done is not None:
                on_done(idx, results[idx])
