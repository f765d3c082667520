"""Rated chat turns seeded through a route, for route reports and the promote rule."""
from __future__ import annotations

import random
import time
import uuid

from sqlalchemy import insert

from workbench.store.chatlog import ChatLog
from workbench.store.schema import chat_turns


def seed_turns(log: ChatLog, arm: str, n: int, resolved_p: float, seed: int,
               route: str = "cs-support") -> None:
    """``n`` answers of ``arm`` with a rating and a "resolved?" each, in one transaction."""
    rng = random.Random(seed)
    now = time.time()
    rows = []
    for i in range(n):
        good = rng.random() < resolved_p
        rows.append({"turn_id": uuid.uuid4().hex, "conversation_id": "c", "created": now, "lang": "en",
                     "region": "EU", "grounded": 1, "pane": "route", "variant": arm, "model": "tiny",
                     "user_text": "q", "answer_text": "a", "total_ms": 100.0 + i, "ttft_ms": 10.0 + i % 7,
                     "route": route, "arm": arm, "face": "api",
                     "rating": rng.randint(3, 5) if good else rng.randint(1, 3),
                     "resolved": int(rng.random() < resolved_p)})
    with log.db.begin() as conn:
        conn.execute(insert(chat_turns), rows)
