"""The shared store's tables (SQLAlchemy Core), one definition for queries and migrations."""
from __future__ import annotations

from sqlalchemy import Column, Float, Index, Integer, MetaData, String, Table, Text

metadata = MetaData()

# One row per served answer, from every face; feedback is the latest the customer gave.
chat_turns = Table(
    "chat_turns", metadata,
    Column("turn_id", String(64), primary_key=True),  # chatcmpl-… / cmpl-…
    Column("conversation_id", String(64), nullable=False),
    Column("created", Float, nullable=False),
    Column("lang", String(16)), Column("region", String(16)),
    Column("grounded", Integer, nullable=False, default=0),
    Column("pane", String(32), nullable=False),  # left/right/a/b, else the face
    Column("variant", String(256), nullable=False),  # name@version or base
    Column("model", String(256), nullable=False),
    Column("user_text", Text, nullable=False),  # masked (empty with WORKBENCH_STORE_TEXT=0)
    Column("answer_text", Text, nullable=False),
    Column("total_ms", Float), Column("ttft_ms", Float), Column("tokens_per_s", Float),
    Column("batch_size", Integer),
    Column("rating", Integer), Column("resolved", Integer),
    Column("route", String(128)), Column("arm", String(256)), Column("error", Text),
    Column("face", String(16)), Column("finish_reason", String(16)),
    Column("prompt_tokens", Integer), Column("completion_tokens", Integer),
    Column("user_hash", String(64)),  # salted hash of the user/session key, never the key
    Column("escalated", Integer), Column("comment", Text), Column("feedback_at", Float),
)
Index("chat_turns_conv", chat_turns.c.conversation_id)
Index("chat_turns_route", chat_turns.c.route)
Index("chat_turns_created", chat_turns.c.created)

# Every feedback change: what the turn's feedback was before and after (JSON).
feedback_audit = Table(
    "feedback_audit", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("turn_id", String(64), nullable=False),
    Column("at", Float, nullable=False),
    Column("source", String(32), nullable=False),  # api, page, arena
    Column("before", Text), Column("after", Text),
)

# A/B routes (their weights, incumbent, margin, seed and guard) and every change to them.
routes = Table(
    "routes", metadata,
    Column("name", String(128), primary_key=True),
    Column("body", Text, nullable=False),  # JSON
    Column("updated", Float, nullable=False),
)
route_audit = Table(
    "route_audit", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", Float, nullable=False),
    Column("route", String(128), nullable=False),
    Column("action", String(32), nullable=False),
    Column("who", String(128), nullable=False),
    Column("before", Text), Column("after", Text), Column("note", Text),
)
