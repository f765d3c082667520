"""Hot-swap, load and unload while requests stream: none fails, none changes adapter mid-way.

Every streamed answer must equal the answer the same prompt gets when run alone on one of
the adapter versions that could have served it: the version before the operation, or the
one after. A mix of both (weights changed inside a generate call) matches neither.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import pytest

from workbench.service import lifecycle
from workbench.adapters.demo import make_random_adapter
from workbench.errors import AdapterError, BusyError, UnknownNameError
from workbench.models.catalog import load_model
from workbench.service.workbench import Workbench

PROMPTS = ["Where is my order?", "¿Dónde está mi pedido?", "我想退货。", "Refund in 7 days?"]
TOKENS = 24


def ask(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def alone(wb: Workbench, adapter: str | None) -> dict[str, str]:
    """Each prompt run by itself (batch of one) on what ``adapter`` serves now."""
    out = {}
    for p in PROMPTS:
        done = wb.engine.generate(ask(p), adapter=adapter, max_new_tokens=TOKENS)
        assert done.error is None
        out[p] = done.text
    return out


@dataclass
class Streamed:
    """One request of the background load, with when it started and ended."""

    prompt: str
    adapter: str | None
    submitted: float
    finished: float = 0.0
    text: str = ""
    status: str = ""


@dataclass
class Load:
    """Background clients streaming requests until told to stop."""

    wb: Workbench
    adapters: list[str | None]
    stop: threading.Event = field(default_factory=threading.Event)
    done: list[Streamed] = field(default_factory=list)
    refused: int = 0

    def client(self, k: int) -> None:
        i = k
        while not self.stop.is_set():
            adapter, prompt = self.adapters[i % len(self.adapters)], PROMPTS[i % len(PROMPTS)]
            i += 3
            rec = Streamed(prompt, adapter, time.monotonic())
            try:
                req = self.wb.engine.submit(ask(prompt), adapter=adapter, max_new_tokens=TOKENS)
            except (BusyError, UnknownNameError):
                self.refused += 1  # refused at the door is fine; failing once accepted is not
                time.sleep(0.01)
                continue
            rec.text = "".join(self.wb.engine.stream(req, timeout=60))
            rec.finished, rec.status = time.monotonic(), req.status.value
            self.done.append(rec)

    def run(self, clients: int = 3) -> list[threading.Thread]:
        threads = [threading.Thread(target=self.client, args=(k,), daemon=True) for k in range(clients)]
        for t in threads:
            t.start()
        return threads


def check(records: list[Streamed], refs_before: dict, refs_after: dict, t_start: float,
          t_end: float) -> None:
    """Before the op: old answers; after: new; during: either, but never a mixture."""
    assert records, "the background load produced no requests"
    for r in records:
        assert r.status == "finished", r
        if r.finished < t_start:
            allowed = {refs_before[r.prompt]}
        elif r.submitted > t_end:
            allowed = {refs_after[r.prompt]}
        else:
            allowed = {refs_before[r.prompt], refs_after[r.prompt]}
        assert r.text in allowed, (r.prompt, r.adapter, r.text, allowed)


def wait_for(cond, timeout: float = 30.0) -> None:
    """Poll instead of sleeping a fixed time: the CPU is shared and speeds vary."""
    deadline = time.monotonic() + timeout
    while not cond() and time.monotonic() < deadline:
        time.sleep(0.02)


def run_op_under_load(wb: Workbench, adapters: list[str | None], op) -> tuple[list[Streamed], float, float]:
    load = Load(wb, adapters)
    threads = load.run()
    wait_for(lambda: len(load.done) >= 3)
    try:
        t_start = time.monotonic()
        op()
        t_end = time.monotonic()
        wait_for(lambda: sum(r.submitted > t_end for r in load.done) >= 3)
    finally:  # an op expected to fail must not leave clients running past the engine
        load.stop.set()
        for t in threads:
            t.join(60)
    # The operation really ran under load: requests completed on both sides of it.
    assert any(r.finished < t_start for r in load.done)
    assert any(r.submitted > t_end for r in load.done)
    return load.done, t_start, t_end


@pytest.fixture(params=["off", "static"])
def decode_graphs(request: pytest.FixtureRequest) -> str:
    """Every test here runs with PEFT's routing and with the stacked, bucketed decode step,
    whose stacks must be rebuilt by each load, swap and unload."""
    return request.param


@pytest.fixture
def a1_v2(workbench: Workbench) -> Workbench:
    make_random_adapter(load_model("tiny-glm").model, workbench.registry.root / "a1" / "v2",
                        base_model_id="tiny-glm", seed=21, rank=4)
    return workbench


def test_hot_swap_under_load(a1_v2: Workbench) -> None:
    wb = a1_v2
    v1, a2, base = alone(wb, "a1"), alone(wb, "a2"), alone(wb, None)
    records, t0, t1 = run_op_under_load(wb, ["a1", "a2", None], lambda: lifecycle.swap(wb, "a1@v2"))
    v2 = alone(wb, "a1")
    assert v2 != v1
    check([r for r in records if r.adapter == "a1"], v1, v2, t0, t1)
    check([r for r in records if r.adapter == "a2"], a2, a2, t0, t1)
    check([r for r in records if r.adapter is None], base, base, t0, t1)
    # Rolling back under load is the same operation in the other direction.
    records, t0, t1 = run_op_under_load(wb, ["a1", "a2"], lambda: lifecycle.rollback(wb, "a1"))
    check([r for r in records if r.adapter == "a1"], v2, v1, t0, t1)
    check([r for r in records if r.adapter == "a2"], a2, a2, t0, t1)
    assert wb.served["a1"].version == "v1"
    static = wb.engine.runner.static
    if static is not None:  # the bucketed step served these requests
        assert static.stats.graphs > 0 and static.stats.eager_steps > 0


def test_load_and_drain_unload_under_load(a1_v2: Workbench) -> None:
    wb = a1_v2
    lifecycle.unload(wb, "a2")
    a1, base = alone(wb, "a1"), alone(wb, None)
    # a2 becomes available part-way through: its requests are refused until then, and
    # the others must not notice.
    records, t0, t1 = run_op_under_load(wb, ["a1", None, "a2"], lambda: lifecycle.load(wb, "a2"))
    a2 = alone(wb, "a2")
    check([r for r in records if r.adapter == "a1"], a1, a1, t0, t1)
    check([r for r in records if r.adapter is None], base, base, t0, t1)
    check([r for r in records if r.adapter == "a2"], a2, a2, t0, t1)
    # Drain-unload while a2 is being streamed: accepted requests finish on a2, later ones
    # are refused at submit, nothing fails.
    records, t0, t1 = run_op_under_load(wb, ["a2", "a1"], lambda: lifecycle.unload(wb, "a2", drain=True))
    check([r for r in records if r.adapter == "a2"], a2, a2, t0, t1)
    check([r for r in records if r.adapter == "a1"], a1, a1, t0, t1)
    assert wb.engine.adapters == ["a1"]


def test_unload_refused_while_busy(workbench: Workbench) -> None:
    wb = workbench
    reqs = [wb.engine.submit(ask(p), adapter="a2", max_new_tokens=64) for p in PROMPTS]
    if "a2" in wb.engine.busy_adapters():  # almost always: the batch has barely started
        with pytest.raises(AdapterError, match="queued or running|in flight"):
            lifecycle.unload(wb, "a2")
        assert "a2" in wb.engine.adapters and "a2" in wb.served
    for r in reqs:
        r.done_event.wait(60)
        assert r.status.value == "finished"


def test_swap_to_bad_version_keeps_serving_old(a1_v2: Workbench) -> None:
    wb = a1_v2
    bad = wb.registry.root / "a1" / "v3"
    make_random_adapter(load_model("tiny-glm").model, bad, base_model_id="tiny-glm", seed=5, rank=4)
    weights = bad / "adapter_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    v1 = alone(wb, "a1")
    with pytest.raises(AdapterError):
        lifecycle.swap(wb, "a1@v3")
    assert wb.served["a1"].version == "v1" and alone(wb, "a1") == v1
