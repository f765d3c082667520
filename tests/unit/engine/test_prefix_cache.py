"""Reused system-prompt keys/values: same tokens as a full prefill, bounded, dropped on swaps."""
from __future__ import annotations

import pytest
import torch
from greedy_match import assert_row_near_greedy

from workbench.config import EngineConfig
from workbench.engine import Engine, RequestStatus
from workbench.engine.prefix import PrefixCache, PromptIds
from workbench.errors import InputError
from workbench.models.catalog import load_model

FAQ = ("Shipping: orders leave the warehouse within 2 business days. Standard delivery takes 5 to 9 "
       "days. Returns: 30 days from delivery, refund within 10 days of receipt.")
POLICY = "Region JP: returns within 8 days of receipt; opened items and perishables are excluded."
PAIRS = [  # (system prompt or None, question, adapter): two prefixes of different lengths,
    (FAQ, "Where is my order?", None),  # rows with and without one, base and two adapters
    (FAQ, "¿Dónde está mi pedido?", "a1"),
    (POLICY, "返品できますか？", "a2"),
    (None, "Refund in 7 days?", "a1"),
]


def msgs(system: str | None, text: str) -> list[dict[str, str]]:
    head = [{"role": "system", "content": system}] if system else []
    return head + [{"role": "user", "content": text}]


def run_batch(engine: Engine, pairs=PAIRS, n: int = 10) -> list:
    reqs = [engine.submit(msgs(s, t), a, max_new_tokens=n) for s, t, a in pairs]
    for r in reqs:
        assert r.done_event.wait(120)
        assert r.status is RequestStatus.FINISHED, r.error
    return reqs


@pytest.fixture(params=["tiny-glm", "tiny-glm4"])
def mixed_engine(request, make_adapter):
    loaded = load_model(request.param)
    paths = {name: make_adapter(loaded, name, seed=seed) for name, seed in (("a1", 1), ("a2", 2))}
    with Engine(loaded, EngineConfig(max_batch_size=4, max_wait_ms=500, min_prefix_tokens=4)) as engine:
        for name, path in paths.items():
            engine.load_adapter(name, path)
        yield engine, paths


def test_reused_prefix_gives_the_tokens_of_a_full_prefill(mixed_engine) -> None:
    mixed_engine, _ = mixed_engine
    runner = mixed_engine.runner
    cache = runner.prefixes
    runner.prefixes = PrefixCache(0, 4)  # off: every prompt prefilled whole
    reference = [r.output_text for r in run_batch(mixed_engine)]
    assert all(r.metrics.cached_tokens == 0 for r in run_batch(mixed_engine))
    runner.prefixes = cache
    first = run_batch(mixed_engine)  # computes each (adapter, system prompt) once
    second = run_batch(mixed_engine)  # served from the cache
    for r in first + second:  # every row a greedy decode of its own prompt and adapter
        assert_row_near_greedy(runner.model, mixed_engine.loaded.tokenizer, r.messages,
                               r.output_token_ids, r.adapter_key)
    agree = [a.output_text == b for a, b in zip(second, reference)]
    assert sum(agree) >= 3  # rows part only at near-ties (see greedy_match)
    assert {r.metrics.batch_size for r in first + second} == {4}
    assert [r.metrics.cached_tokens == 0 for r in first] == [True] * 4
    cached = [r.metrics.cached_tokens for r in second]
    assert cached[0] > cached[2] > 0 and cached[1] == cached[0] and cached[3] == 0
    assert all(c < r.metrics.prompt_tokens for c, r in zip(cached, second))
    assert len(cache) == 3 and cache.stats.hits == 3 and cache.stats.misses == 3
    assert mixed_engine.stats.cached_tokens == sum(cached)


def test_adapter_change_drops_cached_prefixes(mixed_engine, make_adapter) -> None:
    mixed_engine, paths = mixed_engine
    run_batch(mixed_engine)
    assert len(mixed_engine.runner.prefixes) == 3
    fresh = load_model(mixed_engine.loaded.name)  # the served model already carries LoRA layers
    new = make_adapter(fresh, "a1", version="v2", seed=7)
    mixed_engine.replace_adapter("a1", new, paths["a1"])
    assert len(mixed_engine.runner.prefixes) == 0
    after = [r.output_text for r in run_batch(mixed_engine)]
    mixed_engine.runner.prefixes = PrefixCache(0, 4)
    assert after == [r.output_text for r in run_batch(mixed_engine)]


def test_conversation_over_budget_drops_turns_and_keeps_reusing_the_system_prompt() -> None:
    loaded = load_model("tiny-glm")
    config = EngineConfig(max_batch_size=2, max_wait_ms=0, max_prompt_tokens=96, min_prefix_tokens=4)
    history = [m for i in range(5) for m in ({"role": "user", "content": f"Order {i} is late?"},
                                              {"role": "assistant", "content": f"Order {i} ships today."})]
    long_chat = [{"role": "system", "content": POLICY}, *history, {"role": "user", "content": "Refund?"}]
    with Engine(loaded, config) as engine:
        first = engine.submit(long_chat, max_new_tokens=4)
        assert first.done_event.wait(60)
        again = engine.submit(long_chat, max_new_tokens=4)  # after the first stored the prefix
        for r in (first, again):
            assert r.done_event.wait(60) and r.status is RequestStatus.FINISHED
            assert r.truncated_turns >= 1 and r.metrics.prompt_tokens <= 96
        assert again.metrics.cached_tokens == again.prefix_len > 0  # the policy itself stayed whole
        with pytest.raises(InputError, match="prompt budget"):
            engine.submit(msgs(FAQ * 6, "Where is my order?"))
    assert len(engine.runner.prefixes) == 1


def _kv(tokens: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [(torch.zeros(1, 2, tokens, 8), torch.zeros(1, 2, tokens, 8))]  # 128 B per token


def test_cache_stays_within_its_budget_and_evicts_least_recent() -> None:
    cache = PrefixCache(budget_mb=2048 / 2**20, min_tokens=1)  # 2 KiB: 16 tokens
    rows = [PromptIds(list(range(k, k + 8)) + [99], 8, "__base__") for k in range(3)]
    cache.put(rows[0], _kv(8))
    cache.put(rows[1], _kv(8))
    assert cache.get(rows[0]) is not None  # now the most recent
    cache.put(rows[2], _kv(8))
    assert cache.nbytes <= 2048 and cache.stats.evictions == 1
    assert cache.get(rows[1]) is None and cache.get(rows[0]) is not None
    cache.put(PromptIds(list(range(40)), 39, "__base__"), _kv(39))  # larger than the budget
    assert len(cache) == 2
    same_tokens_other_adapter = PromptIds(rows[0].ids, 8, "a1")
    assert cache.get(same_tokens_other_adapter) is None


def test_chat_stats_line_tells_how_much_of_the_prompt_was_reused() -> None:
    from workbench.engine import Request, RequestMetrics
    from workbench.ui.chat_tab import stats_line

    m = RequestMetrics(queue_ms=5, ttft_ms=200, total_ms=900, prompt_tokens=812, completion_tokens=20,
                       batch_size=2, cached_tokens=760)
    assert "760 of 812 prompt tokens reused" in stats_line(Request([], metrics=m))
    m.cached_tokens = 0
    assert "reused" not in stats_line(Request([], metrics=m))
