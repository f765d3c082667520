"""Served chat turns and their feedback, stored (masked) in the shared store.

Every answer from every face is one row, keyed by the id the answer carried
(``chatcmpl-…``); the customer's feedback on it (1–5 rating, resolved, escalated to a human,
a comment) is the latest given, and each change is kept in ``feedback_audit``. Texts are
masked by ``workbench.domain.pii`` on write, or not stored at all with
``WORKBENCH_STORE_TEXT=0``; the user key is stored only as a salted hash; rows older than
``WORKBENCH_RETENTION_DAYS`` are deleted.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import delete, func, insert, select, update

from workbench.config import workbench_home
from workbench.domain.pii import mask_pii
from workbench.errors import InputError, StoreError
from workbench.store.db import Database
from workbench.store.schema import chat_turns, feedback_audit

FEEDBACK_FIELDS = ("rating", "resolved", "escalated", "comment")
# Rows a retention sweep deletes at most in one statement (keeps each transaction short).
_SWEEP_EVERY_S = 3600.0


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
    # The user or session key (hashed with the store's salt before it is stored).
    user: str | None = None


@dataclass(frozen=True)
class Feedback:
    """A customer's feedback on one answer: at least one outcome."""

    rating: int | None = None
    resolved: bool | None = None
    escalated: bool | None = None
    comment: str | None = None

    def check(self) -> "Feedback":
        if self.rating is None and self.resolved is None and self.escalated is None:
            raise InputError("Feedback needs at least one of rating, resolved or escalated.", "rating")
        if self.rating is not None and not 1 <= int(self.rating) <= 5:
            raise InputError(f"A rating is 1 to 5, not {self.rating}.", "rating")
        if self.comment is not None and len(self.comment) > 2000:
            raise InputError("A comment is at most 2,000 characters.", "comment")
        return self


def store_text() -> bool:
    """Whether answer and question texts are stored (``WORKBENCH_STORE_TEXT=0``: metrics only)."""
    return os.environ.get("WORKBENCH_STORE_TEXT", "1").strip() not in ("0", "false", "no")


def retention_days() -> float | None:
    raw = os.environ.get("WORKBENCH_RETENTION_DAYS", "").strip()
    if not raw:
        return None
    try:
        days = float(raw)
    except ValueError:
        raise InputError(f"WORKBENCH_RETENTION_DAYS must be a number of days, not {raw!r}.") from None
    return days if days > 0 else None


def _salt() -> str:
    """The store's salt for user keys (``WORKBENCH_USER_SALT``, else one kept in WORKBENCH_HOME)."""
    env = os.environ.get("WORKBENCH_USER_SALT")
    if env:
        return env
    path = workbench_home() / "user-salt"
    if not path.exists():
        path.write_text(uuid.uuid4().hex)
    return path.read_text().strip()


def user_hash(user: str | None) -> str | None:
    return None if not user else hashlib.sha256(f"{_salt()}:{user}".encode()).hexdigest()[:32]


class ChatLog:
    """Served turns plus their feedback; safe to share between threads and processes."""

    def __init__(self, path: Path | None = None, url: str | None = None) -> None:
        self.db = Database(path, url)
        self.path = self.db.path
        self._swept = 0.0
        self.db.engine  # migrate now: a bad URL fails at start, not at the first answer

    def record(self, turn: ChatTurn, turn_id: str | None = None) -> str:
        """Store ``turn`` (its texts masked) under ``turn_id`` (the served answer's id) or a new id."""
        turn_id = turn_id or uuid.uuid4().hex
        keep = store_text()
        row = {"turn_id": turn_id, "conversation_id": turn.conversation_id, "created": time.time(),
               "lang": turn.lang, "region": turn.region, "grounded": int(turn.grounded),
               "pane": turn.pane, "variant": turn.variant, "model": turn.model,
               "user_text": mask_pii(turn.user_text, turn.region, turn.lang) if keep else "",
               "answer_text": mask_pii(turn.answer_text, turn.region, turn.lang) if keep else "",
               "total_ms": turn.total_ms, "ttft_ms": turn.ttft_ms, "tokens_per_s": turn.tokens_per_s,
               "batch_size": turn.batch_size, "route": turn.route, "arm": turn.arm,
               "error": turn.error, "face": turn.face, "finish_reason": turn.finish_reason,
               "prompt_tokens": turn.prompt_tokens, "completion_tokens": turn.completion_tokens,
               "user_hash": user_hash(turn.user)}
        with self.db.begin() as conn:
            conn.execute(insert(chat_turns).values(**row))
        self._sweep()
        return turn_id

    def rate(self, turn_id: str, rating: int | None = None, resolved: bool | None = None) -> None:
        """The page's Rating / Resolved? radios: one outcome at a time, the others kept."""
        self.give_feedback(turn_id, Feedback(rating=rating, resolved=resolved), "page", merge=True)

    def give_feedback(self, turn_id: str, feedback: Feedback, source: str,
                      merge: bool = False) -> dict:
        """Store feedback on a served turn: it replaces the earlier feedback (``merge``: only
        the outcomes given change), and the change is audited. Returns the turn's row."""
        feedback.check()
        with self.db.begin() as conn:
            row = conn.execute(select(chat_turns).where(chat_turns.c.turn_id == turn_id)
                               .with_for_update()).mappings().first()
            if row is None:
                raise StoreError(f"No served answer with id {turn_id}.")
            before = {k: row[k] for k in FEEDBACK_FIELDS}
            given = {"rating": feedback.rating, "comment": feedback.comment,
                     "resolved": None if feedback.resolved is None else int(feedback.resolved),
                     "escalated": None if feedback.escalated is None else int(feedback.escalated)}
            after = {k: (v if v is not None else before[k]) for k, v in given.items()} if merge else given
            now = time.time()
            conn.execute(update(chat_turns).where(chat_turns.c.turn_id == turn_id)
                         .values(**after, feedback_at=now))
            conn.execute(insert(feedback_audit).values(turn_id=turn_id, at=now, source=source,
                                                       before=json.dumps(before), after=json.dumps(after)))
        return {**dict(row), **after, "feedback_at": now}

    def get(self, turn_id: str) -> dict | None:
        with self.db.begin() as conn:
            row = conn.execute(select(chat_turns).where(chat_turns.c.turn_id == turn_id)).mappings().first()
        return dict(row) if row else None

    def feedback_history(self, turn_id: str) -> list[dict]:
        with self.db.begin() as conn:
            rows = conn.execute(select(feedback_audit).where(feedback_audit.c.turn_id == turn_id)
                                .order_by(feedback_audit.c.id)).mappings().all()
        return [dict(r) for r in rows]

    def turns(self, conversation_id: str | None = None) -> list[dict]:
        query = select(chat_turns).order_by(chat_turns.c.created)
        if conversation_id:
            query = query.where(chat_turns.c.conversation_id == conversation_id)
        with self.db.begin() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    def route_turns(self, route: str, since: float | None = None) -> list[dict]:
        """Turns that came through ``route`` (newer than ``since``), with their arm and feedback."""
        c = chat_turns.c
        query = (select(c.turn_id, c.created, c.arm, c.total_ms, c.ttft_ms, c.rating, c.resolved,
                        c.escalated, c.error, c.face)
                 .where(c.route == route, c.created >= (since or 0.0)).order_by(c.created))
        with self.db.begin() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    def outcome_counts(self, route: str, since: float | None = None) -> dict[str, dict[str, int]]:
        """Per arm of ``route``: answers with a resolved / escalated outcome and how many said
        yes, counted by the database (the guard asks after every feedback)."""
        c = chat_turns.c
        query = (select(c.arm, func.count(c.resolved), func.coalesce(func.sum(c.resolved), 0),
                        func.count(c.escalated), func.coalesce(func.sum(c.escalated), 0))
                 .where(c.route == route, c.created >= (since or 0.0)).group_by(c.arm))
        with self.db.begin() as conn:
            rows = conn.execute(query).all()
        return {arm: {"resolution": (int(rn), int(ry)), "escalation": (int(en), int(ey))}
                for arm, rn, ry, en, ey in rows}

    def outcome_rows(self, since: float) -> list[dict]:
        """Every answer newer than ``since`` with its variant, feedback, latency and error."""
        c = chat_turns.c
        query = (select(c.variant, c.arm, c.rating, c.resolved, c.escalated, c.error, c.ttft_ms,
                        c.total_ms).where(c.created >= since))
        with self.db.begin() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    def _sweep(self) -> None:
        """Delete turns past the retention period (at most once an hour per process)."""
        days = retention_days()
        now = time.time()
        if days is None or now - self._swept < _SWEEP_EVERY_S:
            return
        self._swept = now
        self.purge(now - days * 86400.0)

    def purge(self, before: float) -> int:
        """Delete turns created before ``before`` (epoch seconds) and their audit lines."""
        with self.db.begin() as conn:
            old = select(chat_turns.c.turn_id).where(chat_turns.c.created < before)
            conn.execute(delete(feedback_audit).where(feedback_audit.c.turn_id.in_(old)))
            return conn.execute(delete(chat_turns).where(chat_turns.c.created < before)).rowcount


def new_conversation_id() -> str:
    return uuid.uuid4().hex[:12]
