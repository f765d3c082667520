"""The one place finished turns are recorded, whatever face served them.

Recording runs on its own writer thread: masking personal data and writing the database
must not hold up the engine's thread (which ends requests) or a response. While the database
is unavailable the writer keeps the turns (up to ``MAX_PENDING``, oldest dropped first, each
drop logged) and retries, so answers served during an outage are stored once it is back.
``flush`` waits until every turn handed in so far is stored, so a rating that follows an
answer finds it.
"""
from __future__ import annotations

import collections
import logging
import threading
import time

from workbench.service.turns import ServedTurn
from workbench.store.chatlog import ChatLog, ChatTurn
from workbench.store.db import StoreUnavailable

log = logging.getLogger(__name__)
# Turns kept in memory while the database is away; past this the oldest are dropped.
MAX_PENDING = 10_000
RETRY_S = 0.5


def chat_turn(served: ServedTurn) -> ChatTurn:
    """The stored row of a served turn."""
    t, v, m = served.turn, served.variant, served.metrics
    return ChatTurn(t.conversation_id or served.turn_id, t.lang or "", t.region or "",
                    t.grounded and bool(t.region), t.pane or t.face.value, v.arm or v.label,
                    served.model_name, t.last_message, served.answer, m.total_ms, m.ttft_ms,
                    m.tokens_per_s, m.batch_size, route=v.route, arm=v.arm, error=served.error,
                    face=t.face.value, finish_reason=served.finish_reason,
                    prompt_tokens=m.prompt_tokens, completion_tokens=m.completion_tokens, user=t.user)


class TurnRecorder:
    """Stores served turns in the chat log from a writer thread."""

    def __init__(self, chatlog: ChatLog) -> None:
        self.chatlog = chatlog
        self._pending: collections.deque[ServedTurn] = collections.deque()
        self._cond = threading.Condition()
        self._busy = False
        self._closed = False
        self._thread = threading.Thread(target=self._write, name="turn-recorder", daemon=True)
        self._thread.start()

    def record(self, served: ServedTurn) -> None:
        """Hand a finished turn over (never blocks the caller)."""
        with self._cond:
            if len(self._pending) >= MAX_PENDING:
                lost = self._pending.popleft()
                log.error("recording backlog full: turn %s not stored", lost.turn_id)
            self._pending.append(served)
            self._cond.notify_all()

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every turn handed over so far is stored; False if that took too long
        (the database is away: the turns stay queued)."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._pending and not self._busy, timeout)

    def close(self) -> None:
        self.flush(10.0)
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(5)

    def _write(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._pending or self._closed)
                if not self._pending:
                    return
                served, self._busy = self._pending[0], True
            stored = self._store(served)
            with self._cond:
                self._busy = False
                if stored and self._pending and self._pending[0] is served:
                    self._pending.popleft()
                self._cond.notify_all()
            if not stored:
                time.sleep(RETRY_S)

    def _store(self, served: ServedTurn) -> bool:
        """True when the turn is stored (or can never be); False to retry later."""
        try:
            self.chatlog.record(chat_turn(served), turn_id=served.turn_id)
        except StoreUnavailable as exc:
            log.warning("turn %s waits for the database: %s", served.turn_id, exc.message)
            return self._closed
        except Exception:  # a record that cannot be stored never breaks serving
            log.exception("could not record turn %s", served.turn_id)
        return True
