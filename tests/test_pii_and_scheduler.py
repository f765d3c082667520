"""PII masking, the torch-free scheduler, and the chat log."""
from __future__ import annotations

import sys
import subprocess

import pytest

from workbench.chatlog import ChatLog, ChatTurn
from workbench.config import EngineConfig
from workbench.engine.request import Request, RequestStatus, SamplingParams
from workbench.engine.scheduler import Scheduler
from workbench.errors import BusyError, InputError, StoreError
from workbench.pii import mask_pii


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


def req(sampling: SamplingParams | None = None) -> Request:
    return Request(messages=[{"role": "user", "content": "hi"}], sampling=sampling or SamplingParams())


def test_scheduler_never_imports_torch() -> None:
    code = ("import sys; import workbench.engine.scheduler, workbench.engine.request; "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_scheduler_batches_fcfs_by_sampling_and_size() -> None:
    s = Scheduler(EngineConfig(max_batch_size=2, max_wait_ms=0))
    hot = SamplingParams(temperature=0.7)
    a, b, c, d = req(), req(hot), req(), req()
    for r in (a, b, c, d):
        s.add(r)
    first = s.next_batch()
    assert first.requests == [a, c]  # oldest decides; same settings join, up to 2
    assert s.next_batch().requests == [b]
    assert s.next_batch().requests == [d]
    assert s.next_batch(timeout=0.01) is None


def test_scheduler_refuses_when_full_and_drops_cancelled() -> None:
    s = Scheduler(EngineConfig(max_queue=2, max_wait_ms=0))
    a, b = req(), req()
    s.add(a)
    s.add(b)
    with pytest.raises(BusyError):
        s.add(req())
    a.cancel()
    batch = s.next_batch()
    assert batch.requests == [b]
    assert a.status is RequestStatus.CANCELLED and a.done_event.is_set()


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
