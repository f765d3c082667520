"""The engine on an INT4 AWQ base made by `workbench quantize`: batched rows equal rows alone."""
from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from workbench.cli import main
from workbench.config import EngineConfig
from workbench.engine import Engine, RequestStatus
from workbench.models.catalog import load_model, resolve_preset
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


def msgs(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def test_catalog_detects_awq_folder(awq_dir: Path) -> None:
    assert resolve_preset(str(awq_dir)).source == "awq"
    loaded = load_model(str(awq_dir))
    assert loaded.is_awq and loaded.precision == "awq-int4"


def test_awq_engine_mixed_batch_equals_rows_alone(awq_dir: Path, make_adapter) -> None:
    loaded = load_model(str(awq_dir))
    float_twin = build_tiny_glm("glm", seed=3, hidden=128)[0]
    # Adapters are made on a float instance and served on the INT4 one.
    from workbench.models.loaded import LoadedModel

    twin = LoadedModel("twin", loaded.model_id, float_twin, loaded.tokenizer, "cpu", "float32")
    a1 = make_adapter(twin, "a1", seed=1)
    with Engine(loaded, EngineConfig(max_batch_size=3, max_wait_ms=500)) as engine:
        engine.load_adapter("a1", a1)
        pairs = [(QUESTIONS[0], None), (QUESTIONS[1], "a1"), (QUESTIONS[2], "a1")]
        reqs = [engine.submit(msgs(t), a, max_new_tokens=8) for t, a in pairs]
        for r in reqs:
            assert r.done_event.wait(60) and r.status is RequestStatus.FINISHED
        assert {r.metrics.batch_size for r in reqs} == {3}
        for (text, adapter), req in zip(pairs, reqs):
            single = engine.generate(msgs(text), adapter, 8)
            assert single.metrics.batch_size == 1
            assert req.output_text == single.text
        assert engine.generate(msgs(QUESTIONS[0]), "a1", 8).text != reqs[0].output_text
