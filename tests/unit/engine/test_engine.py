"""The batched engine on tiny GLM models: batching equivalence, adapters, queue, cancel, metrics."""
from __future__ import annotations

import threading
import time

import pytest

from greedy_match import assert_row_near_greedy
from workbench.config import EngineConfig
from workbench.engine import BASE_ADAPTER, Engine, RequestSpec, RequestStatus, SamplingParams
from workbench.errors import AdapterError, BusyError, InputError, UnknownNameError
from workbench.models.catalog import load_model

QUESTIONS = [
    "Where is my order? It has not arrived.",
    "我的订单在哪里？我想退货。",
    "¿Puedo devolver unos zapatos después de 20 días?",
    "أين طلبي؟",
]


def msgs(text: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": "You are a support agent."},
            {"role": "user", "content": text}]


def alone(engine: Engine, text: str, adapter: str | None, n: int = 12) -> str:
    """The request run by itself (batch of one)."""
    c = engine.generate(msgs(text), adapter, n)
    assert c.metrics.batch_size == 1
    return c.text


def shared_greedy_prefix(a: list[int], b: list[int]) -> int:
    """Steps two greedy decodes agree; both were checked near-greedy, so a split is a near-tie."""
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


def run_together(engine: Engine, pairs: list[tuple[str, str | None]], n: int = 12) -> list:
    """Submit all at once so they share one generate call."""
    reqs = [engine.submit(msgs(t), a, max_new_tokens=n) for t, a in pairs]
    for r in reqs:
        assert r.done_event.wait(60)
    return reqs


@pytest.mark.parametrize("kind", ["tiny-glm", "tiny-glm4"])
def test_batched_rows_equal_rows_run_alone(kind: str, make_adapter) -> None:
    loaded = load_model(kind)
    a1 = make_adapter(loaded, "a1", seed=1)
    a2 = make_adapter(loaded, "a2", seed=2)
    # A long wait so that all four requests land in the same batch.
    with Engine(loaded, EngineConfig(max_batch_size=4, max_wait_ms=500)) as engine:
        engine.load_adapter("a1", a1)
        engine.load_adapter("a2", a2)
        pairs = [(QUESTIONS[0], None), (QUESTIONS[1], "a1"), (QUESTIONS[2], "a2"), (QUESTIONS[3], None)]
        reqs = run_together(engine, pairs)
        assert {r.metrics.batch_size for r in reqs} == {4}
        for (text, adapter), req in zip(pairs, reqs):
            assert req.status is RequestStatus.FINISHED
            alone_req = engine.submit(msgs(text), adapter, max_new_tokens=12)
            assert alone_req.done_event.wait(60) and alone_req.metrics.batch_size == 1
            for r in (req, alone_req):  # both are greedy decodes of the row's own adapter
                assert_row_near_greedy(engine.runner.model, loaded.tokenizer, r.messages,
                                       r.output_token_ids, adapter or BASE_ADAPTER)
            compared = shared_greedy_prefix(req.output_token_ids, alone_req.output_token_ids)
            assert compared >= 1
        # Adapter rows differ from base rows on the same prompt.
        base, ad1, ad2 = (alone(engine, QUESTIONS[0], a) for a in (None, "a1", "a2"))
        assert base != ad1 and base != ad2 and ad1 != ad2


def test_streamed_pieces_add_up_to_the_answer(engine: Engine) -> None:
    req = engine.submit(msgs(QUESTIONS[0]), max_new_tokens=10)
    pieces = list(engine.stream(req, timeout=60))
    assert len(pieces) >= 2
    assert "".join(pieces) == req.output_text
    assert req.metrics.completion_tokens == 10 and req.finish_reason == "length"


def test_metrics_are_present_and_ordered(engine: Engine) -> None:
    reqs = run_together(engine, [(q, None) for q in QUESTIONS[:3]], n=8)
    for r in reqs:
        m = r.metrics
        assert None not in (m.queue_ms, m.ttft_ms, m.total_ms, m.tpot_ms)
        assert 0 <= m.queue_ms <= m.ttft_ms <= m.total_ms
        assert m.prompt_tokens > 0 and m.completion_tokens == 8 and m.batch_size >= 1
        assert m.tokens_per_s and m.tokens_per_s > 0


def test_queue_full_is_refused_at_once(tiny_loaded) -> None:
    engine = Engine(tiny_loaded, EngineConfig(max_queue=2))  # not started: nothing drains the queue
    engine.submit(msgs("a"))
    engine.submit(msgs("b"))
    start = time.monotonic()
    with pytest.raises(BusyError, match="busy"):
        engine.submit(msgs("c"))
    assert time.monotonic() - start < 1.0
    engine.shutdown()


def test_cancel_while_queued(tiny_loaded) -> None:
    engine = Engine(tiny_loaded, EngineConfig(max_batch_size=1, max_wait_ms=0))
    first = engine.submit(msgs(QUESTIONS[0]), max_new_tokens=200)
    queued = engine.submit(msgs(QUESTIONS[1]), max_new_tokens=5)
    assert engine.cancel(queued.request_id)
    engine.start()
    assert queued.done_event.wait(30)
    assert queued.status is RequestStatus.CANCELLED and queued.metrics.completion_tokens == 0
    engine.cancel(first.request_id)
    assert first.done_event.wait(60)
    engine.shutdown()


def test_cancel_mid_stream_stops_that_row_only(engine: Engine) -> None:
    keep = engine.submit(msgs(QUESTIONS[0]), max_new_tokens=40)
    stop = engine.submit(msgs(QUESTIONS[1]), max_new_tokens=40)
    seen = []
    for piece in engine.stream(stop, timeout=60):
        seen.append(piece)
        if len(seen) == 3:
            assert engine.cancel(stop.request_id)
    assert keep.done_event.wait(60)
    assert stop.status is RequestStatus.CANCELLED and stop.finish_reason == "cancelled"
    assert stop.metrics.completion_tokens < 40
    assert keep.status is RequestStatus.FINISHED and keep.metrics.completion_tokens == 40
    assert not engine.cancel(stop.request_id)  # already done


def test_unknown_adapter_lists_known_names(engine: Engine, tiny_loaded, make_adapter) -> None:
    engine.load_adapter("cs-support", make_adapter(tiny_loaded, "cs-support"))
    with pytest.raises(UnknownNameError) as err:
        engine.submit(msgs("hi"), adapter="cs-suport")
    assert "Did you mean 'cs-support'?" in str(err.value)
    assert "Known: base, cs-support" in str(err.value) and BASE_ADAPTER not in str(err.value)


def test_unknown_preset_lists_known_names() -> None:
    with pytest.raises(UnknownNameError) as err:
        load_model("smollm-135m")
    assert "smollm2-135m" in str(err.value) and "tiny-glm" in str(err.value)


def test_bad_input_is_refused(engine: Engine) -> None:
    with pytest.raises(InputError):
        engine.submit([{"role": "user", "content": "   "}])
    with pytest.raises(InputError):
        engine.submit([{"role": "robot", "content": "hi"}, {"role": "user", "content": "x"}])
    with pytest.raises(InputError):
        engine.submit(msgs("hi"), max_new_tokens=0)


def test_generate_many_mixes_variants_and_keeps_order(engine: Engine, tiny_loaded, make_adapter) -> None:
    engine.load_adapter("a1", make_adapter(tiny_loaded, "a1"))
    specs = [RequestSpec(msgs(q), a, 6) for q in QUESTIONS for a in (None, "a1")]
    done: list[int] = []
    out = engine.generate_many(specs, on_done=lambda i, c: done.append(i))
    assert sorted(done) == list(range(len(specs)))
    assert [c.adapter for c in out] == [s.adapter for s in specs]
    for spec, c in zip(specs, out):  # each row is a greedy decode of its own adapter
        assert_row_near_greedy(engine.runner.model, tiny_loaded.tokenizer, spec.messages,
                               list(c.token_ids), spec.adapter or BASE_ADAPTER)
        assert c.status is RequestStatus.FINISHED and len(c.token_ids) == c.metrics.completion_tokens


def test_unload_refused_while_requests_wait(tiny_loaded, make_adapter) -> None:
    engine = Engine(tiny_loaded, EngineConfig())
    engine.load_adapter("a1", make_adapter(tiny_loaded, "a1"))  # worker not started: runs inline
    engine.submit(msgs("hi"), adapter="a1")
    with pytest.raises(AdapterError, match="queued or running"):
        engine.unload_adapter("a1")
    engine.start()
    engine.unload_adapter("a1", drain=True)
    assert engine.adapters == []
    engine.shutdown()


def test_failed_batch_fails_its_requests_and_serving_goes_on(engine: Engine, tiny_loaded,
                                                           make_adapter, monkeypatch) -> None:
    engine.load_adapter("a1", make_adapter(tiny_loaded, "a1"))
    expected = alone(engine, QUESTIONS[0], "a1")
    base_expected = alone(engine, QUESTIONS[0], None)
    real_forward = type(tiny_loaded.model).forward
    calls = {"n": 0}
    hooks_before = sum(len(m._forward_pre_hooks) for m in engine.runner.model.modules())

    def flaky(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:  # fail mid-generation, while peft's per-row hooks are installed
            raise RuntimeError("simulated kernel failure")
        return real_forward(self, *args, **kwargs)

    monkeypatch.setattr(type(tiny_loaded.model), "forward", flaky)
    bad = engine.submit(msgs(QUESTIONS[0]), adapter="a1", max_new_tokens=12)
    assert bad.done_event.wait(60)
    assert bad.status is RequestStatus.FAILED and "simulated" in bad.error
    monkeypatch.setattr(type(tiny_loaded.model), "forward", real_forward)
    # peft leaves its per-row hooks behind when generate raises; the engine removes them.
    leftover = sum(len(m._forward_pre_hooks) for m in engine.runner.model.modules())
    assert leftover == hooks_before
    assert alone(engine, QUESTIONS[0], None) == base_expected  # no stale adapter routing
    assert alone(engine, QUESTIONS[0], "a1") == expected


def test_rows_of_different_sampling_settings_share_steps(tiny_loaded) -> None:
    engine = Engine(tiny_loaded, EngineConfig(max_wait_ms=300))
    greedy = [engine.submit(msgs(q), max_new_tokens=4) for q in QUESTIONS[:2]]
    hot = engine.submit(msgs(QUESTIONS[2]), max_new_tokens=4, sampling=SamplingParams(temperature=0.8))
    chat = engine.submit(msgs(QUESTIONS[3]), max_new_tokens=4,
                         sampling=SamplingParams(repetition_penalty=1.15))
    engine.start()
    for r in (*greedy, hot, chat):
        assert r.done_event.wait(60)
    assert {r.metrics.batch_size for r in (*greedy, hot, chat)} == {4}
    engine.shutdown()


def test_concurrent_clients_all_finish(engine: Engine) -> None:
    results: list = []

    def client(i: int) -> None:
        results.append(engine.generate(msgs(QUESTIONS[i % 4]), None, 5))

    threads = [threading.Thread(target=client, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(results) == 8 and all(c.status is RequestStatus.FINISHED for c in results)
    assert max(c.metrics.batch_size for c in results) > 1
