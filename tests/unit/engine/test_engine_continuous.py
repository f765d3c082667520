"""Continuous batching on the tiny GLM: rows join and leave between steps, priorities, a worker
that never hangs its callers, structured rows, stop strings, seeds, context budget by turns."""
from __future__ import annotations

import threading
import time

import pytest

from greedy_match import assert_row_near_greedy
from workbench.config import EngineConfig
from workbench.engine import (BASE_ADAPTER, Engine, Priority, Request, RequestSpec, RequestStatus,
                              SamplingParams, StructuredOutput)
from workbench.engine import sampling as sampling_mod
from workbench.errors import AdapterError, InputError, WorkbenchError

QUESTIONS = ["Where is my order? It has not arrived.", "我的订单在哪里？我想退货。",
             "¿Puedo devolver unos zapatos después de 20 días?", "أين طلبي؟"]
LONG = SamplingParams(ignore_eos=True)


def msgs(text: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": "You are a support agent."}, {"role": "user", "content": text}]


def wait_for(cond, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def check_row(engine: Engine, req: Request, adapter: str = BASE_ADAPTER, penalty: float = 1.0) -> None:
    banned = sorted(engine.runner.eos_ids) if req.sampling.ignore_eos else ()
    assert_row_near_greedy(engine.runner.model, engine.loaded.tokenizer, req.messages,
                           req.output_token_ids, adapter, penalty, banned, label=req.request_id)


def test_row_joining_mid_decode_next_to_other_adapters_and_settings(tiny_loaded, make_adapter) -> None:
    with Engine(tiny_loaded, EngineConfig(max_batch_size=4, max_wait_ms=0)) as engine:
        engine.load_adapter("a1", make_adapter(tiny_loaded, "a1", seed=1))
        first = engine.submit(msgs(QUESTIONS[0]), None, LONG, max_new_tokens=40)
        wait_for(lambda: len(first.output_token_ids) >= 5)
        late = engine.submit(msgs(QUESTIONS[1]), "a1", SamplingParams(repetition_penalty=1.3), 12)
        hot = engine.submit(msgs(QUESTIONS[2]), None, SamplingParams(temperature=0.9, seed=3), 12)
        for r in (first, late, hot):
            assert r.done_event.wait(60) and r.status is RequestStatus.FINISHED, r.error
        assert late.metrics.batch_size >= 2  # it really decoded next to the running row
        check_row(engine, first)
        check_row(engine, late, "a1", 1.3)
        alone = engine.generate(msgs(QUESTIONS[1]), "a1", 12, SamplingParams(repetition_penalty=1.3))
        assert alone.metrics.batch_size == 1
        assert engine.stats.mean_running_batch > 1
        # The rule notices a row served by another row's adapter.
        with pytest.raises(AssertionError, match="wrong adapter"):
            check_row(engine, late, BASE_ADAPTER, 1.3)


def test_row_that_stops_early_closes_its_stream_first(tiny_loaded) -> None:
    with Engine(tiny_loaded, EngineConfig(max_batch_size=4, max_wait_ms=200)) as engine:
        long = engine.submit(msgs(QUESTIONS[0]), None, LONG, max_new_tokens=400)
        short = engine.submit(msgs(QUESTIONS[1]), None, LONG, max_new_tokens=3)
        pieces = list(engine.stream(short, timeout=60))
        assert "".join(pieces) == short.output_text and short.metrics.completion_tokens == 3
        assert not long.done_event.is_set() and len(long.output_token_ids) < 100
        assert short.metrics.batch_size == 2
        engine.cancel(long.request_id)


def test_cancelled_row_frees_its_slot_for_the_next_request(tiny_loaded) -> None:
    with Engine(tiny_loaded, EngineConfig(max_batch_size=2, max_wait_ms=0)) as engine:
        a = engine.submit(msgs(QUESTIONS[0]), None, LONG, max_new_tokens=1000)
        b = engine.submit(msgs(QUESTIONS[1]), None, LONG, max_new_tokens=1000)
        wait_for(lambda: a.output_token_ids and b.output_token_ids)
        queued = engine.submit(msgs(QUESTIONS[2]), None, LONG, max_new_tokens=5)
        time.sleep(0.2)
        assert queued.status is RequestStatus.WAITING  # both slots are taken
        assert engine.cancel(b.request_id)
        assert queued.done_event.wait(60) and queued.status is RequestStatus.FINISHED
        assert b.status is RequestStatus.CANCELLED and not a.done_event.is_set()
        engine.cancel(a.request_id)


def test_reader_that_goes_away_cancels_its_request(engine: Engine) -> None:
    req = engine.submit(msgs(QUESTIONS[0]), None, LONG, max_new_tokens=1000)
    pieces = engine.stream(req, timeout=60)
    next(pieces)
    pieces.close()  # a closed browser tab, an aborted eval
    assert req.done_event.wait(30) and req.status is RequestStatus.CANCELLED


def test_chat_admitted_during_eval_goes_before_queued_eval_items(tiny_loaded) -> None:
    config = EngineConfig(max_batch_size=2, max_wait_ms=0, preempt_batch=False)
    with Engine(tiny_loaded, config) as engine:
        ended: list[Request] = []
        engine.add_listener(ended.append)
        specs = [RequestSpec(msgs(q), None, 30, LONG) for q in QUESTIONS * 2]
        runner = threading.Thread(target=engine.generate_many, args=(specs,))
        runner.start()
        wait_for(lambda: engine.snapshot().running == 2 and engine.snapshot().waiting >= 4)
        chat = engine.submit(msgs("Chat: where is my parcel?"), None, LONG, max_new_tokens=4)
        queued = engine.snapshot().waiting - 1
        assert chat.done_event.wait(60)
        runner.join(120)
        evals = [r for r in ended if r.priority is Priority.BATCH]
        assert len(evals) == len(specs) and all(r.status is RequestStatus.FINISHED for r in evals)

        def admitted(r: Request) -> float:
            return r.arrival + r.metrics.queue_ms / 1000

        # Every eval item still queued when chat arrived was admitted after chat.
        late = [r for r in evals if admitted(r) > chat.arrival]
        assert len(late) >= queued >= 3
        assert all(admitted(r) >= admitted(chat) for r in late)


def test_interactive_request_takes_a_batch_rows_slot_and_the_row_resumes(tiny_loaded) -> None:
    with Engine(tiny_loaded, EngineConfig(max_batch_size=2, max_wait_ms=0)) as engine:
        evals = [engine.submit(msgs(q), None, LONG, 60, Priority.BATCH) for q in QUESTIONS[:2]]
        wait_for(lambda: all(len(r.output_token_ids) >= 5 for r in evals))
        chat = engine.submit(msgs(QUESTIONS[3]), None, LONG, max_new_tokens=6)
        assert chat.done_event.wait(60) and chat.status is RequestStatus.FINISHED
        assert chat.metrics.ttft_steps <= 1
        for r in evals:
            assert r.done_event.wait(60) and r.status is RequestStatus.FINISHED
            assert r.metrics.completion_tokens == 60
        assert sum(r.metrics.preemptions for r in evals) == 1 == engine.stats.preemptions
        for r in evals:  # the recomputed row continues as if it had never left
            check_row(engine, r)


def test_short_request_joins_a_long_decode_within_three_steps(tiny_loaded) -> None:
    with Engine(tiny_loaded, EngineConfig(max_batch_size=4, max_wait_ms=0)) as engine:
        long = engine.submit(msgs(QUESTIONS[0]), None, LONG, max_new_tokens=256)
        wait_for(lambda: len(long.output_token_ids) >= 5)
        short = engine.submit(msgs(QUESTIONS[1]), None, LONG, max_new_tokens=8)
        assert short.done_event.wait(60)
        left = 256 - len(long.output_token_ids)
        assert short.metrics.ttft_steps <= 3
        assert short.metrics.completion_tokens == 8 and left > 100
        assert long.done_event.wait(120) and long.metrics.completion_tokens == 256


def test_failing_step_fails_only_its_rows(tiny_loaded, monkeypatch) -> None:
    with Engine(tiny_loaded, EngineConfig(max_batch_size=4, max_wait_ms=0)) as engine:
        runner = engine.runner
        real_prefill = runner.prefill_chunk

        def prefill(job, tokens=None):
            if any("BOOM" in r.request.messages[-1]["content"] for r in job.rows):
                raise RuntimeError("simulated kernel failure")
            return real_prefill(job, tokens)

        monkeypatch.setattr(runner, "prefill_chunk", prefill)
        ok = engine.submit(msgs(QUESTIONS[0]), None, LONG, max_new_tokens=60)
        wait_for(lambda: len(ok.output_token_ids) >= 3)
        bad = engine.submit(msgs("BOOM"), max_new_tokens=5)
        assert bad.done_event.wait(30) and bad.status is RequestStatus.FAILED
        assert "simulated kernel failure" in bad.error and bad.finish_reason == "error"
        assert ok.done_event.wait(60) and ok.status is RequestStatus.FINISHED
        assert ok.metrics.completion_tokens == 60
        # A decode step that raises fails the rows decoding then; later requests are served.
        real_decode = runner.decode
        calls = {"n": 0}

        def decode(batch):
            calls["n"] += 1
            if calls["n"] == 3:
                raise RuntimeError("decode failure")
            return real_decode(batch)

        monkeypatch.setattr(runner, "decode", decode)
        victim = engine.submit(msgs(QUESTIONS[1]), None, LONG, max_new_tokens=20)
        assert victim.done_event.wait(30) and victim.status is RequestStatus.FAILED
        after = engine.generate(msgs(QUESTIONS[2]), max_new_tokens=5)
        assert after.status is RequestStatus.FINISHED and engine.stats.failed_steps == 2


class Crash(BaseException):
    """Escapes every ``except Exception`` in the loop, as a real bug in it might."""


def test_dead_worker_fails_everything_and_submit_refuses(tiny_loaded, monkeypatch) -> None:
    engine = Engine(tiny_loaded, EngineConfig(max_batch_size=1, max_wait_ms=0)).start()
    running = engine.submit(msgs(QUESTIONS[0]), None, LONG, max_new_tokens=1000)
    waiting = engine.submit(msgs(QUESTIONS[1]), None, LONG, max_new_tokens=5)
    wait_for(lambda: running.output_token_ids)

    def crash() -> None:
        raise Crash("loop bug")

    monkeypatch.setattr(engine._worker, "decode_once", crash)
    for r in (running, waiting):
        assert r.done_event.wait(10) and r.status is RequestStatus.FAILED
        assert "internal error" in r.error
    wait_for(lambda: not engine.alive, 10)
    start = time.monotonic()
    with pytest.raises(WorkbenchError, match="internal error"):
        engine.submit(msgs(QUESTIONS[2]))
    assert time.monotonic() - start < 1.0
    engine.shutdown()


def test_timed_out_adapter_operation_never_runs(tiny_loaded, make_adapter) -> None:
    with Engine(tiny_loaded, EngineConfig(max_batch_size=2, max_wait_ms=0)) as engine:
        engine.load_adapter("a1", make_adapter(tiny_loaded, "a1"))
        busy = engine.submit(msgs(QUESTIONS[0]), "a1", LONG, max_new_tokens=1000)
        wait_for(lambda: busy.output_token_ids)
        ran = threading.Event()
        with pytest.raises(AdapterError, match="withdrawn"):
            engine.call_between_batches(ran.set, timeout=0.2, adapter="a1")  # a1 is busy
        assert not busy.done_event.is_set()
        engine.cancel(busy.request_id)
        assert busy.done_event.wait(60) and busy.status is RequestStatus.CANCELLED
        engine.generate(msgs(QUESTIONS[1]), "a1", 3)  # a few steps with a1 idle
        assert not ran.is_set() and engine._worker.ops == []
        assert engine.adapters == ["a1"]


class FixedSequence:
    """A fake grammar: only ``seq`` may be generated, then it is finished."""

    def __init__(self, seq: list[int]) -> None:
        self.seq, self.pos = seq, 0

    def mask_logits(self, logits) -> None:
        allowed = logits[self.seq[self.pos]].clone()
        logits.fill_(float("-inf"))
        logits[self.seq[self.pos]] = allowed

    def accept(self, token_id: int) -> None:
        assert token_id == self.seq[self.pos]
        self.pos += 1

    def is_finished(self) -> bool:
        return self.pos == len(self.seq)


class Exploding(FixedSequence):
    """A grammar that breaks while the row decodes."""

    def accept(self, token_id: int) -> None:
        raise RuntimeError("grammar state lost")


def test_structured_rows_follow_their_constraint_next_to_free_rows(tiny_loaded, monkeypatch) -> None:
    tok = tiny_loaded.tokenizer
    seq = tok('{"verdict": "yes"}', add_special_tokens=False)["input_ids"]

    def compile_constraint(spec, tokenizer, vocab_size):
        if spec.choice == ("broken",):
            raise ValueError("unsupported schema keyword 'patternProperties'")
        if spec.choice == ("explodes",):
            return Exploding(seq)
        assert vocab_size == tiny_loaded.model.config.vocab_size
        return FixedSequence(seq)

    monkeypatch.setattr(sampling_mod, "compile_constraint", compile_constraint)
    constrained = SamplingParams(structured=StructuredOutput(json_schema='{"type": "object"}'))
    broken = SamplingParams(structured=StructuredOutput(choice=("broken",)))
    explodes = SamplingParams(structured=StructuredOutput(choice=("explodes",)))
    with Engine(tiny_loaded, EngineConfig(max_batch_size=4, max_wait_ms=200)) as engine:
        free = engine.submit(msgs(QUESTIONS[0]), None, LONG, max_new_tokens=30)
        json_row = engine.submit(msgs(QUESTIONS[1]), None, constrained, max_new_tokens=100)
        bad = engine.submit(msgs(QUESTIONS[2]), None, broken, max_new_tokens=10)
        boom = engine.submit(msgs(QUESTIONS[3]), None, explodes, max_new_tokens=10)
        for r in (free, json_row, bad, boom):
            assert r.done_event.wait(60)
        assert engine.alive
    assert json_row.output_token_ids == seq and json_row.finish_reason == "stop"
    assert json_row.output_text == '{"verdict": "yes"}'
    assert bad.status is RequestStatus.FAILED and "patternProperties" in bad.error
    assert boom.status is RequestStatus.FAILED and "grammar state lost" in boom.error
    assert free.status is RequestStatus.FINISHED and free.metrics.completion_tokens == 30


def test_stop_string_ends_the_output_before_it(engine: Engine) -> None:
    full = engine.generate(msgs(QUESTIONS[0]), max_new_tokens=24, sampling=LONG)
    text = full.text
    stop = next(text[i:i + 2] for i in range(6, len(text) - 2) if text[i:i + 2].strip() == text[i:i + 2])
    req = engine.submit(msgs(QUESTIONS[0]), None, SamplingParams(ignore_eos=True, stop=(stop,)), 24)
    pieces = list(engine.stream(req, timeout=60))
    assert req.finish_reason == "stop" and req.output_text == text[:text.index(stop)]
    assert "".join(pieces) == req.output_text and stop not in req.output_text


def test_seeded_sampling_is_per_request(engine: Engine) -> None:
    hot = SamplingParams(temperature=1.0, top_p=0.9, seed=11, ignore_eos=True)
    alone = engine.generate(msgs(QUESTIONS[0]), None, 16, hot)
    reqs = [engine.submit(msgs(QUESTIONS[0]), None, hot, 16),
            engine.submit(msgs(QUESTIONS[1]), None, SamplingParams(temperature=1.0, seed=5), 16)]
    for r in reqs:
        assert r.done_event.wait(60)
    assert reqs[0].output_text == alone.text
    other = engine.generate(msgs(QUESTIONS[0]), None, 16, SamplingParams(temperature=1.0, top_p=0.9,
                                                                          seed=12, ignore_eos=True))
    assert other.text != alone.text


def conversation(turns: int) -> list[dict[str, str]]:
    out = [{"role": "system", "content": "Returns: 30 days from delivery. Refunds within 10 days."}]
    for i in range(turns):
        out += [{"role": "user", "content": f"Question {i}: where is my order number {i}?"},
                {"role": "assistant", "content": f"Answer {i}: it ships within two business days."}]
    return out + [{"role": "user", "content": "And can I return it?"}]


def test_long_conversation_drops_whole_oldest_turns_keeping_the_system(tiny_loaded) -> None:
    from workbench.ui.chat_tab import stats_line

    engine = Engine(tiny_loaded, EngineConfig(max_prompt_tokens=120, max_wait_ms=0))
    prompter, messages = engine.runner.prompter, conversation(6)
    assert len(prompter.ids(messages)) > 120
    req = engine.submit(messages, max_new_tokens=4)
    k = req.truncated_turns
    assert k >= 1 and req.prompt_ids == prompter.ids([messages[0], *messages[1 + 2 * k:]])
    assert len(req.prompt_ids) <= 120  # and one turn fewer dropped would not have fitted:
    assert len(prompter.ids([messages[0], *messages[1 + 2 * (k - 1):]])) > 120
    engine.start()
    assert req.done_event.wait(60) and req.status is RequestStatus.FINISHED
    assert f"{k} oldest turn" in stats_line(req)
    short = engine.submit(conversation(0), max_new_tokens=2)
    assert short.done_event.wait(60) and short.truncated_turns == 0
    assert "dropped" not in stats_line(short)
    long_system = [{"role": "system", "content": "policy " * 200}, {"role": "user", "content": "hi"}]
    with pytest.raises(InputError, match="system message"):
        engine.submit(long_system)
    engine.shutdown()


def test_overlong_message_is_cut_only_when_asked_and_the_answer_says_so(tiny_loaded) -> None:
    from workbench.ui.chat_tab import stats_line

    engine = Engine(tiny_loaded, EngineConfig(max_prompt_tokens=120, max_wait_ms=0))
    system = {"role": "system", "content": "Returns: 30 days from delivery."}
    messages = [system, {"role": "user", "content": "where is my parcel " * 60}]
    with pytest.raises(InputError, match="last message"):
        engine.submit(messages, max_new_tokens=4)  # callers that did not ask are refused
    req = engine.submit(messages, max_new_tokens=4, cut_last=True)
    assert 0 < req.cut_tokens and len(req.prompt_ids) <= 120
    # The system message and the template survive whole; only the message's tail went.
    head = engine.runner.prompter.ids([system], generation_prompt=False)
    assert req.prompt_ids[:len(head) - 1] == head[:-1]
    assert req.prompt_ids[-2:] == engine.runner.prompter.ids([system, {"role": "user", "content": "x"}])[-2:]
    engine.start()
    assert req.done_event.wait(60) and req.status is RequestStatus.FINISHED
    assert f"its last {req.cut_tokens} tokens were left out" in stats_line(req)
    assert "cut at its limit of 4 tokens" in stats_line(req) or req.finish_reason != "length"
    engine.shutdown()
