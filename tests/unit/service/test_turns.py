"""A turn's token queue and handle: sync and async readers, several turns read as one stream,
and a reader that leaves early cancels its turn."""
from __future__ import annotations

import asyncio
import queue
import threading

import pytest

from workbench.engine.request import Request, TokenQueue
from workbench.service.turns import Face, TurnHandle, TurnRequest, stream_together
from workbench.service.variants import Variant


def feed(q: TokenQueue, pieces: list[str], delay: float = 0.01) -> threading.Thread:
    def run() -> None:
        for p in pieces:
            threading.Event().wait(delay)
            q.put(p)
        q.put(None)
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def handle(cancelled: list[str]) -> TurnHandle:
    turn = TurnRequest.question("base", "hi", Face.CLI)
    return TurnHandle(turn, Variant("tiny"), Request(messages=[]),
                      lambda h, why: cancelled.append(why) or True)


def test_sync_and_async_readers_get_every_piece_in_order() -> None:
    q = TokenQueue()
    feed(q, ["a", "b", "c"])
    assert [q.get(timeout=5) for _ in range(4)] == ["a", "b", "c", None]
    with pytest.raises(queue.Empty):
        q.get(timeout=0.01)

    async def read(q: TokenQueue) -> list[str | None]:
        return [await q.aget() for _ in range(4)]
    q2 = TokenQueue()
    feed(q2, ["x", "y", "z"])
    assert asyncio.run(read(q2)) == ["x", "y", "z", None]


def test_turns_read_together_end_when_all_end() -> None:
    hs = [handle([]), handle([])]
    feed(hs[0].queue, ["1", "2"])
    feed(hs[1].queue, ["a", "b", "c"], delay=0.02)
    got: dict[int, str] = {0: "", 1: ""}
    for batch in stream_together(hs):
        for i, piece in batch:
            got[i] += piece
    assert got == {0: "12", 1: "abc"}


def test_a_reader_that_leaves_early_cancels() -> None:
    cancelled: list[str] = []
    h = handle(cancelled)
    h.queue.put("first")
    for piece in h:
        assert piece == "first"
        break
    assert cancelled == ["the reader stopped before the end"]
    cancelled.clear()
    hs = [handle(cancelled), handle(cancelled)]
    hs[0].queue.put("x")
    hs[1].queue.put(None)  # this one ended: nothing to cancel
    gen = stream_together(hs)
    assert next(gen) == [(0, "x")]
    gen.close()  # the page went away
    assert cancelled == ["the reader stopped before the end"]
