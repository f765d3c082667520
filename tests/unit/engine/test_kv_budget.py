"""The key/value memory cap: rows × longest row stays within ``kv_cache_mb``; a request alone
always runs; a chat request that does not fit takes memory from batch rows."""
from __future__ import annotations

import time

from workbench.config import EngineConfig
from workbench.engine import Engine, Priority, RequestStatus, SamplingParams
from workbench.engine.scheduler import KVBudget

LONG = SamplingParams(ignore_eos=True)
MSGS = [{"role": "system", "content": "You are a support agent."},
        {"role": "user", "content": "Where is my order? It has not arrived."}]
NEW = 40


def test_budget_counts_rows_times_the_longest_row() -> None:
    budget = KVBudget(bytes_per_token=10, limit_bytes=1000)
    assert budget.fits([10_000])  # one row always fits, whatever its size
    assert budget.fits([50, 20]) and not budget.fits([50, 20, 30])  # 3 x 50 x 10 > 1000
    assert KVBudget(10, 0).fits([10_000] * 64)  # 0: no cap


def _mib_for_rows(tiny_loaded, rows: int) -> float:
    """A cap that holds exactly ``rows`` rows of MSGS with NEW tokens."""
    probe = Engine(tiny_loaded, EngineConfig())
    prompt = probe.runner.prompter.fit(MSGS, 4096, 0).ids
    return rows * (len(prompt) + NEW) * probe.runner.kv_bytes_per_token() / 2**20


def _run_four(tiny_loaded, kv_cache_mb: float) -> list[int]:
    config = EngineConfig(max_batch_size=4, max_wait_ms=200, kv_cache_mb=kv_cache_mb)
    with Engine(tiny_loaded, config) as engine:
        reqs = [engine.submit(MSGS, None, LONG, NEW, Priority.BATCH) for _ in range(4)]
        for r in reqs:
            assert r.done_event.wait(60) and r.status is RequestStatus.FINISHED
            assert r.metrics.completion_tokens == NEW
        return [r.metrics.batch_size for r in reqs]


def test_rows_wait_for_memory_not_only_for_slots(tiny_loaded) -> None:
    assert max(_run_four(tiny_loaded, 0)) == 4  # no cap: all four slots decode together
    assert max(_run_four(tiny_loaded, _mib_for_rows(tiny_loaded, 2))) == 2


def test_a_request_larger_than_the_budget_still_runs_alone(tiny_loaded) -> None:
    assert _run_four(tiny_loaded, 1e-6) == [1, 1, 1, 1]


def test_chat_that_does_not_fit_takes_memory_from_batch_rows(tiny_loaded) -> None:
    config = EngineConfig(max_batch_size=4, max_wait_ms=0, kv_cache_mb=_mib_for_rows(tiny_loaded, 2))
    with Engine(tiny_loaded, config) as engine:
        evals = [engine.submit(MSGS, None, LONG, NEW, Priority.BATCH) for _ in range(3)]
        deadline = time.monotonic() + 60
        while sum(len(r.output_token_ids) > 2 for r in evals) < 2:
            assert time.monotonic() < deadline
            time.sleep(0.005)
        # Two slots are free, but memory holds only two rows: one batch row makes room.
        chat = engine.submit(MSGS, None, LONG, max_new_tokens=4)
        assert chat.done_event.wait(60) and chat.status is RequestStatus.FINISHED
        assert chat.metrics.ttft_steps <= 2
        for r in evals:
            assert r.done_event.wait(60) and r.metrics.completion_tokens == NEW
        assert engine.stats.preemptions >= 1
        assert chat.metrics.total_ms / 1000 + chat.arrival < max(r.arrival + r.metrics.total_ms / 1000 for r in evals)


def test_mmap_threshold_is_left_alone_by_default_and_fixed_on_glibc_when_asked() -> None:
    import platform

    from workbench.engine import memory

    assert EngineConfig().mmap_threshold_kib == 0
    assert memory.fix_mmap_threshold(0) is False
    glibc = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"
    assert memory.give_back() is glibc
    assert memory.fix_mmap_threshold(1024) is glibc


def test_freed_heap_pages_go_back_to_the_os_where_the_pool_changes_size(monkeypatch) -> None:
    import torch

    from workbench.engine import slots

    calls: list[int] = []
    monkeypatch.setattr(slots.memory, "give_back", lambda: calls.append(1) or True)
    pool = slots.SlotPool()
    like = [(torch.zeros(1, 2, 4, 8), torch.zeros(1, 2, 4, 8))]
    pool.ensure(2, 300, like)  # a first allocation frees nothing
    assert calls == []
    pool.ensure(4, 600, like)  # grown: the old buffers' pages go back
    assert len(calls) == 1
    pool.ensure(2, 200, like)  # room enough: nothing allocated, nothing to give back
    assert len(calls) == 1
    pool.release()
    assert len(calls) == 2 and pool.rows == 0


def test_eval_prompts_prefill_in_small_chunks_while_chat_decodes(tiny_loaded) -> None:
    config = EngineConfig(max_batch_size=4, max_wait_ms=0, prefill_chunk_tokens=64, batch_chunk_tokens=8,
                          idle_prefill_chunk_tokens=96)
    with Engine(tiny_loaded, config) as engine:
        seen: list[tuple[bool, int]] = []
        real = engine.runner.prefill_chunk

        def spy(job, tokens=None):
            seen.append((job.rows[0].request.priority is Priority.BATCH, tokens))
            return real(job, tokens)

        engine.runner.prefill_chunk = spy
        alone = engine.submit(MSGS, None, LONG, 2, Priority.BATCH)  # nothing decodes: large chunks
        assert alone.done_event.wait(60)
        assert {t for is_batch, t in seen if is_batch} == {96}
        seen.clear()
        other = engine.submit(MSGS, None, LONG, 40, Priority.BATCH)
        wait = time.monotonic() + 60
        while len(other.output_token_ids) < 3:
            assert time.monotonic() < wait
            time.sleep(0.005)
        joining = engine.submit(MSGS, None, LONG, 2, Priority.BATCH)  # batch work decodes: usual chunks
        assert joining.done_event.wait(60) and other.done_event.wait(60)
        assert {t for is_batch, t in seen if is_batch} == {96, 64}
        seen.clear()
        chat = engine.submit(MSGS, None, LONG, 200)
        deadline = time.monotonic() + 60
        while len(chat.output_token_ids) < 3:
            assert time.monotonic() < deadline
            time.sleep(0.005)
        batch = engine.submit(MSGS, None, LONG, 2, Priority.BATCH)
        assert batch.done_event.wait(60) and not chat.done_event.is_set()
        assert {t for is_batch, t in seen if is_batch} == {8}
        engine.cancel(chat.request_id)


def test_a_prefill_takes_a_short_last_slice_with_the_chunk_before_it(tiny_loaded) -> None:
    from workbench.engine.request import Request

    engine = Engine(tiny_loaded, EngineConfig(max_batch_size=1))
    runner = engine.runner
    ids = runner.prompter.fit(MSGS, 4096, 0).ids
    row = runner.new_row(Request(messages=MSGS, adapter=None, sampling=LONG, max_new_tokens=4,
                                 prompt_ids=ids))
    T = len(ids)
    job = runner.start_prefill([row])
    assert runner.prefill_chunk(job, T - 2) is not None and job.done == T  # 2 columns left: taken now
    job = runner.start_prefill([row])
    assert runner.prefill_chunk(job, T // 2) is None and job.done == T // 2  # half left: a chunk of its own
    assert runner.prefill_chunk(job, T // 2) is not None and job.done == T
