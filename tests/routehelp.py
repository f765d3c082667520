"""Rated chat turns seeded through a route, for route reports and the promote rule."""
from __future__ import annotations

import random

from workbench.store.chatlog import ChatLog, ChatTurn


def seed_turns(log: ChatLog, arm: str, n: int, resolved_p: float, seed: int,
               route: str = "cs-support") -> None:
    rng = random.Random(seed)
    for i in range(n):
        tid = log.record(ChatTurn("c", "en", "EU", True, "route", arm, "tiny", "q", "a",
                                  total_ms=100.0 + i, ttft_ms=10.0 + i % 7, route=route, arm=arm))
        log.rate(tid, rating=rng.randint(3, 5) if rng.random() < resolved_p else rng.randint(1, 3),
                 resolved=rng.random() < resolved_p)
