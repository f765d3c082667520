"""The engine on an INT4 AWQ base made by `workbench quantize`: batched rows equal rows alone."""
from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from greedy_match import assert_row_near_greedy

from workbench.cli import main
from workbench.config import EngineConfig
from workbench.engine import BASE_ADAPTER, Engine, RequestStatus
from workbench.engine.prefix import PrefixCache
from workbench.models.catalog import load_model, resolve_preset
from workbench.models.loaded import LoadedModel
from workbench.models.tiny import build_tiny_glm

QUESTIONS = ["Where is my order?", "我的订单在哪里？", "¿Puedo devolverlo?"]


@pytest.fixture(scope="module")
def awq_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny GLM (hidden 128: AWQ needs widths in multiples of 64) quantized via the CLI."""
    src = tmp_path_factory.mktemp("float")
    model, tok = build_tiny_glm("glm", seed=3, hidden=128)
    model.save_pretrained(src)
    tok.save_pretrained(src)
    dst = tmp_path_factory.mktemp("awq") / "out"
    result = CliRunner().invoke(main, ["quantize", str(src), str(dst), "--group-size", "32",
                                       "--calib-samples", "32"])
    assert result.exit_code == 0, result.output
    return dst


SYSTEM = "You answer for a store. Returns: 30 days from delivery; refunds within 10 days of receipt."


def msgs(text: str, system: str | None = None) -> list[dict[str, str]]:
    head = [{"role": "system", "content": system}] if system else []
    return head + [{"role": "user", "content": text}]


def test_catalog_detects_awq_folder(awq_dir: Path) -> None:
    assert resolve_preset(str(awq_dir)).source == "awq"
    loaded = load_model(str(awq_dir))
    assert loaded.is_awq and loaded.precision == "awq-int4"


def _served(awq_dir: Path, make_adapter, config: EngineConfig) -> Engine:
    """An engine on the INT4 base serving ``a1``, made on a float twin of the same weights."""
    loaded = load_model(str(awq_dir))
    float_twin = build_tiny_glm("glm", seed=3, hidden=128)[0]
    twin = LoadedModel("twin", loaded.model_id, float_twin, loaded.tokenizer, "cpu", "float32")
    engine = Engine(loaded, config).start()
    engine.load_adapter("a1", make_adapter(twin, "a1", seed=1))
    return engine


def _run(engine: Engine, pairs: list[tuple[str, str | None]], system: str | None = None) -> list:
    reqs = [engine.submit(msgs(t, system), a, max_new_tokens=8) for t, a in pairs]
    for r in reqs:
        assert r.done_event.wait(60) and r.status is RequestStatus.FINISHED
    assert {r.metrics.batch_size for r in reqs} == {len(pairs)}
    return reqs


def test_awq_engine_mixed_batch_equals_rows_alone(awq_dir: Path, make_adapter) -> None:
    with _served(awq_dir, make_adapter, EngineConfig(max_batch_size=3, max_wait_ms=500)) as engine:
        pairs = [(QUESTIONS[0], None), (QUESTIONS[1], "a1"), (QUESTIONS[2], "a1")]
        reqs = _run(engine, pairs)
        for (text, adapter), req in zip(pairs, reqs):
            single = engine.generate(msgs(text), adapter, 8)
            assert single.metrics.batch_size == 1
            for tokens in (req.output_token_ids, list(single.token_ids)):  # the tolerance rule
                assert_row_near_greedy(engine.runner.model, engine.loaded.tokenizer, msgs(text),
                                       tokens, adapter or BASE_ADAPTER)
        assert engine.generate(msgs(QUESTIONS[0]), "a1", 8).text != reqs[0].output_text
        with pytest.raises(AssertionError, match="wrong adapter"):  # the rule sees a swapped adapter
            assert_row_near_greedy(engine.runner.model, engine.loaded.tokenizer, msgs(QUESTIONS[1]),
                                   reqs[1].output_token_ids, BASE_ADAPTER)


def test_awq_prefix_reuse_matches_full_prefill(awq_dir: Path, make_adapter) -> None:
    config = EngineConfig(max_batch_size=3, max_wait_ms=500, min_prefix_tokens=4)
    with _served(awq_dir, make_adapter, config) as engine:
        pairs = [(QUESTIONS[0], None), (QUESTIONS[1], "a1"), (QUESTIONS[2], "a1")]
        cache, engine.runner.prefixes = engine.runner.prefixes, PrefixCache(0, 4)
        full = _run(engine, pairs, SYSTEM)
        assert all(r.metrics.cached_tokens == 0 for r in full)
        engine.runner.prefixes = cache
        _run(engine, pairs, SYSTEM)
        reused = _run(engine, pairs, SYSTEM)
        for (text, adapter), r in zip(pairs, reused):
            assert_row_near_greedy(engine.runner.model, engine.loaded.tokenizer, msgs(text, SYSTEM),
                                   r.output_token_ids, adapter or BASE_ADAPTER)
        assert all(r.metrics.cached_tokens > 0 for r in reused)


@pytest.mark.parametrize("decode_graphs", ["off", "static"])
def test_awq_row_joining_mid_decode_keeps_its_adapter(awq_dir: Path, make_adapter, decode_graphs: str) -> None:
    from workbench.engine import SamplingParams

    config = EngineConfig(max_batch_size=3, max_wait_ms=0, decode_graphs=decode_graphs)
    with _served(awq_dir, make_adapter, config) as engine:
        first = engine.submit(msgs(QUESTIONS[0]), None, SamplingParams(ignore_eos=True), 24)
        while len(first.output_token_ids) < 4 and not first.done_event.is_set():
            first.done_event.wait(0.005)
        late = engine.submit(msgs(QUESTIONS[1]), "a1", max_new_tokens=8)
        for r in (first, late):
            assert r.done_event.wait(60) and r.status is RequestStatus.FINISHED, r.error
        assert late.metrics.batch_size == 2 and first.metrics.completion_tokens == 24
        eos = sorted(engine.runner.eos_ids)
        assert_row_near_greedy(engine.runner.model, engine.loaded.tokenizer, msgs(QUESTIONS[0]),
                               first.output_token_ids, BASE_ADAPTER, banned=eos)
        assert_row_near_greedy(engine.runner.model, engine.loaded.tokenizer, msgs(QUESTIONS[1]),
                               late.output_token_ids, "a1")
        if decode_graphs == "static":  # the INT4 layers' LoRA was stacked, not routed by PEFT
            assert engine.runner.static.stats.graphs >= 1
