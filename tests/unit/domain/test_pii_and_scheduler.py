"""PII masking, the torch-free scheduler, and the chat log."""
from __future__ import annotations

import sys
import subprocess

import pytest

from workbench.store.chatlog import ChatLog, ChatTurn
from workbench.config import EngineConfig
from workbench.engine.request import Priority, Request, SamplingParams
from workbench.engine.scheduler import Scheduler
from workbench.errors import BusyError, InputError, StoreError
from workbench.domain.pii import mask_pii


@pytest.mark.parametrize("text, gone, kept", [
    ("My order #4821937 is late, mail jo.doe@example.com", ["4821937", "jo.doe@example.com"], ["late"]),
    ("订单号 ORD-884512 还没到，电话 13812345678", ["884512", "13812345678"], ["还没到"]),
    ("Card 4111 1111 1111 1111 was declined", ["4111 1111 1111 1111"], ["declined"]),
    ("Mi pedido número 88451233 no llegó", ["88451233"], ["pedido"]),
    ("Bestellung Nr. AB123456 ist kaputt, Tel +49 30 1234 5678", ["AB123456", "1234 5678"], ["kaputt"]),
    ("注文番号 123456789 の配送状況", ["123456789"], ["配送状況"]),
])
def test_personal_data_is_masked(text: str, gone: list[str], kept: list[str]) -> None:
    masked = mask_pii(text)
    for g in gone:
        assert g not in masked
    for k in kept:
        assert k in masked


def test_ordinary_numbers_stay() -> None:
    text = "I paid 49.99 EUR for 2 items on 2024-05-01 and want to return within 14 days"
    assert mask_pii(text) == text
    assert mask_pii("Card 1234 5678 9012 3456") == "Card 1234 5678 9012 3456"  # fails Luhn


def req(sampling: SamplingParams | None = None, priority: Priority = Priority.INTERACTIVE,
        adapter: str | None = None) -> Request:
    return Request(messages=[{"role": "user", "content": "hi"}], sampling=sampling or SamplingParams(),
                   priority=priority, adapter=adapter)


def test_scheduler_never_imports_torch() -> None:
    code = ("import sys; import workbench.engine.scheduler, workbench.engine.request; "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_scheduler_admits_interactive_first_then_fcfs_whatever_the_sampling() -> None:
    s = Scheduler(EngineConfig(max_wait_ms=0))
    hot = SamplingParams(temperature=0.7)
    e1, e2 = req(priority=Priority.BATCH), req(hot, priority=Priority.BATCH)
    c1, c2 = req(hot), req()
    for r in (e1, e2, c1, c2):
        s.add(r)
    assert s.take(3, lambda r: True) == [c1, c2, e1]  # chat first, then eval in arrival order
    assert s.take(3, lambda r: True) == [e2]
    assert s.take(3, lambda r: True) == []


def test_scheduler_skips_held_adapters_and_requeues_by_arrival() -> None:
    s = Scheduler(EngineConfig(max_wait_ms=0))
    a, b, c = req(adapter="a1"), req(), req(adapter="a1")
    for r in (a, b, c):
        s.add(r)
    assert s.take(2, lambda r: r.adapter_key != "a1") == [b]
    assert s.adapters_waiting() == {"a1"}
    s.requeue(b)  # preempted: back before c, which arrived later
    assert s.take(3, lambda r: True) == [a, b, c]


def test_scheduler_refuses_when_full_and_hands_back_cancelled() -> None:
    s = Scheduler(EngineConfig(max_queue=2, max_wait_ms=0))
    a, b = req(), req()
    s.add(a)
    s.add(b)
    with pytest.raises(BusyError):
        s.add(req())
    a.cancel()
    assert s.pop_cancelled() == [a]
    assert s.take(5, lambda r: True) == [b]


def test_chatlog_masks_and_rates(tmp_home) -> None:
    log = ChatLog()
    turn = ChatTurn("c1", "en", "EU", True, "left", "__base__", "tiny-glm",
                    "order #4821937, call +44 20 7946 0958", "Your order #4821937 ships today")
    tid = log.record(turn)
    log.rate(tid, rating=4)
    log.rate(tid, resolved=True)
    (row,) = log.turns("c1")
    assert "4821937" not in row["user_text"] + row["answer_text"]
    assert "7946" not in row["user_text"]
    assert row["rating"] == 4 and row["resolved"] == 1
    with pytest.raises(InputError):
        log.rate(tid, rating=9)
    with pytest.raises(StoreError):
        log.rate("nope", rating=3)
    assert log.turns("c1")[0]["rating"] == 4  # bad input changed nothing
