"""The engine's compute dtype: names, ``auto`` by CPU, what is cast, and bfloat16 decodes."""
from __future__ import annotations

import pytest
import torch

from greedy_match import HALF_OR_INT4_TOL, assert_row_near_greedy, logit_tolerance
from workbench.config import EngineConfig
from workbench.engine import BASE_ADAPTER, Engine, RequestStatus, SamplingParams
from workbench.engine import precision
from workbench.errors import UnknownNameError
from workbench.models.catalog import load_model

QUESTIONS = ["Where is my order? It has not arrived.", "我的订单在哪里？我想退货。",
             "¿Puedo devolver unos zapatos después de 20 días?"]


def msgs(text: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": "You are a support agent."}, {"role": "user", "content": text}]


def test_unknown_dtype_is_refused_with_a_suggestion() -> None:
    with pytest.raises(UnknownNameError, match="bfloat16") as err:
        precision.resolve("bfloat61", "cpu", torch.float32)
    assert err.value.known == sorted(precision.NAMES)
    with pytest.raises(UnknownNameError):
        Engine(load_model("tiny-glm"), EngineConfig(dtype="half"))


@pytest.mark.parametrize(("has_bf16", "device", "current", "want"), [
    (True, "cpu", torch.float32, torch.bfloat16),
    (False, "cpu", torch.float32, torch.float32),
    (False, "cpu", torch.bfloat16, torch.float32),
    (True, "cuda", torch.float16, torch.float16),  # a GPU keeps its preset's dtype
])
def test_auto_follows_the_cpu(monkeypatch, has_bf16, device, current, want) -> None:
    monkeypatch.setattr(precision, "cpu_has_bf16", lambda: has_bf16)
    assert precision.resolve("auto", device, current) == want
    assert precision.resolve("float32", device, current) == torch.float32  # explicit names win


def test_cpu_flags_are_read_from_cpuinfo(tmp_path) -> None:
    info = tmp_path / "cpuinfo"
    info.write_text("processor : 0\nflags : fpu sse avx512f avx512_bf16\n")
    assert precision.cpu_has_bf16.__wrapped__(str(info))
    info.write_text("processor : 0\nflags : fpu sse avx2\n")
    assert not precision.cpu_has_bf16.__wrapped__(str(info))
    assert not precision.cpu_has_bf16.__wrapped__(str(tmp_path / "missing"))


def test_bfloat16_casts_parameters_but_keeps_rotary_frequencies() -> None:
    loaded = load_model("tiny-glm")
    assert precision.apply(loaded, "bfloat16") == torch.bfloat16
    assert {p.dtype for p in loaded.model.parameters()} == {torch.bfloat16}
    freqs = [b for n, b in loaded.model.named_buffers() if n.endswith("inv_freq")]
    assert freqs and all(b.dtype == torch.float32 for b in freqs)
    assert loaded.precision == "bfloat16"
    assert precision.apply(loaded, "bfloat16") == torch.bfloat16  # again: nothing to do


def test_bfloat16_engine_rows_are_greedy_decodes_of_their_own_adapter(make_adapter) -> None:
    """Rows of base and two adapters, batched, in bfloat16: the tolerance rule at its
    half-precision tolerance, against the same bfloat16 model run alone."""
    loaded = load_model("tiny-glm")
    paths = {n: make_adapter(loaded, n, seed=s) for n, s in (("a1", 1), ("a2", 2))}
    with Engine(loaded, EngineConfig(max_batch_size=4, max_wait_ms=300, dtype="bfloat16")) as engine:
        assert engine.dtype == "bfloat16" and engine.snapshot().dtype == "bfloat16"
        for name, path in paths.items():
            engine.load_adapter(name, path)
        assert logit_tolerance(engine.runner.model) == HALF_OR_INT4_TOL
        keys = [None, "a1", "a2"]
        reqs = [engine.submit(msgs(q), k, SamplingParams(ignore_eos=True), max_new_tokens=10)
                for q, k in zip(QUESTIONS, keys)]
        for req, key in zip(reqs, keys):
            assert req.done_event.wait(60) and req.status is RequestStatus.FINISHED, req.error
            assert req.metrics.batch_size >= 2
            banned = sorted(engine.runner.eos_ids)
            assert_row_near_greedy(engine.runner.model, loaded.tokenizer, req.messages,
                                   req.output_token_ids, key or BASE_ADAPTER, 1.0, banned)
        kv = engine.runner.kv_bytes_per_token()
    assert kv == load_model("tiny-glm").model.config.num_hidden_layers * 2 * 2 * 16 * 2  # 2 bytes
