"""Chat conversations, answers and their ratings, stored (masked) in the workbench database."""
from __future__ import annotations

import sqlite3
import threading
import time
import uuid
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from workbench.config import connect_db, db_path
from workbench.errors import InputError, StoreError
from workbench.domain.pii import mask_pii

SCHEMA = """
CREATE TABLE IF NOT EXISTS chat_turns (
    turn_id TEXT PRIMARY KEY,
    conversation_id TEXT NOT NULL,
    created REAL NOT NULL,
    lang TEXT, region TEXT, grounded INTEGER NOT NULL DEFAULT 0,
    pane TEXT NOT NULL,             -- 'left' or 'right'
    variant TEXT NOT NULL,          -- adapter name@version or base
    model TEXT NOT NULL,
    user_text TEXT NOT NULL,        -- masked
    answer_text TEXT NOT NULL,      -- masked
    total_ms REAL, ttft_ms REAL, tokens_per_s REAL, batch_size INTEGER,
    rating INTEGER CHECK (rating BETWEEN 1 AND 5),
    resolved INTEGER CHECK (resolved IN (0, 1))
);
CREATE INDEX IF NOT EXISTS chat_turns_conv ON chat_turns(conversation_id);
"""
# Columns added after the first release: (name, SQL type); older databases get them on open.
ADDED_COLUMNS = (("route", "TEXT"),   # route the turn came through (A/B traffic), else NULL
                 ("arm", "TEXT"),     # the route arm that answered: name@version or base
                 ("error", "TEXT"),   # why the answer failed, NULL when it did not
                 ("face", "TEXT"),    # chat, customer, arena, cli or api
                 ("finish_reason", "TEXT"),  # stop, length; NULL when it failed
                 ("prompt_tokens", "INTEGER"), ("completion_tokens", "INTEGER"))


@dataclass(frozen=True)
class ChatTurn:
    """One answer of one pane, as stored."""

    # Conversation the turn belongs to.
    conversation_id: str
    # Customer language code and store region.
    lang: str
    region: str
    # Whether the region policy was injected.
    grounded: bool
    # Which pane or side answered ("left", "right", "a", "b"), or the face for one-pane faces.
    pane: str
    # Variant that answered: "base" or an adapter name@version.
    variant: str
    # Base model name.
    model: str
    # What the customer wrote and what the model answered (masked on write).
    user_text: str
    answer_text: str
    # Engine metrics of the answer.
    total_ms: float | None = None
    ttft_ms: float | None = None
    tokens_per_s: float | None = None
    batch_size: int | None = None
    # Route and arm when the turn was A/B traffic; the error when the answer failed.
    route: str | None = None
    arm: str | None = None
    error: str | None = None
    # The face that served it, why the answer stopped, and its token counts.
    face: str | None = None
    finish_reason: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


class ChatLog:
    """Append-only turns plus ratings; safe to share between UI threads."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or db_path()
        self._lock = threading.Lock()
        with self._connect() as db:
            db.executescript(SCHEMA)
            have = {r[1] for r in db.execute("PRAGMA table_info(chat_turns)")}
            for name, kind in ADDED_COLUMNS:
                if name not in have:
                    db.execute(f"ALTER TABLE chat_turns ADD COLUMN {name} {kind}")
            db.execute("CREATE INDEX IF NOT EXISTS chat_turns_route ON chat_turns(route)")

    def _connect(self) -> sqlite3.Connection:
        return connect_db(self.path)

    def record(self, turn: ChatTurn, turn_id: str | None = None) -> str:
        """Store ``turn`` (its texts masked) under ``turn_id`` (the served answer's id) or a new id."""
        turn_id = turn_id or uuid.uuid4().hex
        row = (turn_id, turn.conversation_id, time.time(), turn.lang, turn.region,
               int(turn.grounded), turn.pane, turn.variant, turn.model,
               mask_pii(turn.user_text, turn.region, turn.lang),
               mask_pii(turn.answer_text, turn.region, turn.lang), turn.total_ms,
               turn.ttft_ms, turn.tokens_per_s, turn.batch_size, turn.route, turn.arm,
               turn.error, turn.face, turn.finish_reason, turn.prompt_tokens, turn.completion_tokens)
        with self._lock, closing(self._connect()) as db, db:
            db.execute("INSERT INTO chat_turns (turn_id, conversation_id, created, lang, region, "
                       "grounded, pane, variant, model, user_text, answer_text, total_ms, ttft_ms, "
                       "tokens_per_s, batch_size, route, arm, error, face, finish_reason, "
                       "prompt_tokens, completion_tokens) "
                       "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", row)
        return turn_id

    def rate(self, turn_id: str, rating: int | None = None, resolved: bool | None = None) -> None:
        if rating is not None and not 1 <= int(rating) <= 5:
            raise InputError(f"A rating is 1 to 5, not {rating}.")
        with self._lock, closing(self._connect()) as db, db:
            cur = db.execute("UPDATE chat_turns SET rating = COALESCE(?, rating), "
                             "resolved = COALESCE(?, resolved) WHERE turn_id = ?",
                             (rating, None if resolved is None else int(resolved), turn_id))
            if cur.rowcount == 0:
                raise StoreError(f"No chat answer with id {turn_id} to rate.")

    def turns(self, conversation_id: str | None = None) -> list[dict]:
        query = "SELECT * FROM chat_turns"
        args: tuple = ()
        if conversation_id:
            query, args = query + " WHERE conversation_id = ?", (conversation_id,)
        with closing(self._connect()) as db:
            db.row_factory = sqlite3.Row
            return [dict(r) for r in db.execute(query + " ORDER BY created", args)]


    def route_turns(self, route: str, since: float | None = None) -> list[dict]:
        """Turns that came through ``route`` (newer than ``since``), with their arm and ratings."""
        with closing(self._connect()) as db:
            db.row_factory = sqlite3.Row
            rows = db.execute("SELECT turn_id, created, arm, total_ms, ttft_ms, rating, resolved, "
                              "error FROM chat_turns WHERE route = ? AND created >= ? ORDER BY "
                              "created", (route, since or 0.0))
            return [dict(r) for r in rows]


def new_conversation_id() -> str:
    return uuid.uuid4().hex[:12]
