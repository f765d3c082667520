"""The one place finished turns are recorded, whatever face served them.

Recording runs on its own writer thread: masking personal data and writing the database
must not hold up the engine's thread (which ends requests) or a response. ``flush`` waits
until every turn handed in so far is stored, so a rating that follows an answer finds it.
"""
from __future__ import annotations

import logging
import queue
import threading

from workbench.service.turns import ServedTurn
from workbench.store.chatlog import ChatLog, ChatTurn

log = logging.getLogger(__name__)


def chat_turn(served: ServedTurn) -> ChatTurn:
    """The stored row of a served turn."""
    t, v, m = served.turn, served.variant, served.metrics
    return ChatTurn(t.conversation_id or served.turn_id, t.lang or "", t.region or "",
                    t.grounded and bool(t.region), t.pane or t.face.value, v.arm or v.label,
                    served.model_name, t.last_message, served.answer, m.total_ms, m.ttft_ms,
                    m.tokens_per_s, m.batch_size, route=v.route, arm=v.arm, error=served.error,
                    face=t.face.value, finish_reason=served.finish_reason,
                    prompt_tokens=m.prompt_tokens, completion_tokens=m.completion_tokens)


class TurnRecorder:
    """Stores served turns in the chat log from a writer thread."""

    def __init__(self, chatlog: ChatLog) -> None:
        self.chatlog = chatlog
        self._queue: queue.Queue[ServedTurn | None] = queue.Queue()
        self._thread = threading.Thread(target=self._write, name="turn-recorder", daemon=True)
        self._thread.start()

    def record(self, served: ServedTurn) -> None:
        """Hand a finished turn over (never blocks the caller)."""
        self._queue.put(served)

    def flush(self) -> None:
        """Wait until every turn handed over so far is stored."""
        self._queue.join()

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(10)

    def _write(self) -> None:
        while True:
            served = self._queue.get()
            try:
                if served is None:
                    return
                self.chatlog.record(chat_turn(served), turn_id=served.turn_id)
            except Exception:  # a record that cannot be stored never breaks serving
                log.exception("could not record turn %s", served.turn_id if served else "")
            finally:
                self._queue.task_done()
