"""INT4 AWQ path: quantize a tiny GLM, load it in plain transformers, serve mixed LoRA batches
through the engine's stacked LoRA routing.

Each tiny model is quantized once per module (a few seconds on CPU). Tiny models use
hidden=128: gptqmodel's AWQ clip search needs output widths that are multiples of 64, and
group_size 32 divides every input width.
"""
from __future__ import annotations

import contextlib
import json
import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file, save_file

pytest.importorskip("gptqmodel")
pytest.importorskip("peft")

from peft import LoraConfig, PeftModel, get_peft_model  # noqa: E402
from peft.tuners.lora.awq import AwqLoraLinear  # noqa: E402
from transformers import AutoModelForCausalLM  # noqa: E402

from workbench.engine.request import BASE_ADAPTER  # noqa: E402
from workbench.engine.stacked_lora import StackedLora  # noqa: E402
from workbench.errors import InputError, MissingExtraError, ModelLoadError  # noqa: E402
from workbench.models import awq  # noqa: E402
from workbench.models.tiny import build_tiny_glm  # noqa: E402

from greedy_match import (assert_greedy_match, assert_near_greedy, logit_tolerance,  # noqa: E402
                          prompt_ids, teacher_forced_logits)

HIDDEN, GROUP = 128, 32
CALIB = [
    "Where is my order? It has not arrived yet and I need it for Friday.",
    "¿Dónde está mi pedido? Quiero devolverlo porque llegó roto.",
    "我的订单在哪里？我想退货，请告诉我怎么办。",
    "Où est ma commande ? Je veux un remboursement, s'il vous plaît.",
    "Wo ist meine Bestellung? Ich möchte den Artikel zurückgeben.",
    "Где мой заказ? Я хочу вернуть товар и получить деньги.",
    "注文はどこですか？返品したいです。よろしくお願いします。",
    "Returns are accepted within 14 days. Refunds arrive in 7 days.",
]
PROMPTS = ["Where is my order?", "我的订单在哪里？我想退货。",
           "Refund please, it arrived broken."]

# peft asks transformers for a deprecated attribute while wrapping; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:`is_gradient_checkpointing` is deprecated")

Quantized = tuple[Path, Any, Any]  # (awq folder, float model, tokenizer)


@pytest.fixture(scope="module")
def quantized(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Quantized]:
    """quantized(kind) -> (awq dir, float model, tokenizer); quantizes each kind once."""
    cache: dict[str, Quantized] = {}

    def get(kind: str) -> Quantized:
        if kind not in cache:
            root = tmp_path_factory.mktemp(f"awq-{kind}")
            model, tok = build_tiny_glm(kind, hidden=HIDDEN)
            model.save_pretrained(root / "float")
            tok.save_pretrained(root / "float")
            out = awq.quantize_to_awq(root / "float", root / "awq", CALIB, group_size=GROUP)
            cache[kind] = (out, model, tok)
        return cache[kind]

    return get


def _logits(model: Any, tok: Any) -> torch.Tensor:
    """Logits at the real (non-pad) positions of a few prompts, float32. [N, vocab]"""
    tok.padding_side = "right"
    try:
        enc = tok(CALIB[:2] + PROMPTS, return_tensors="pt", padding=True)
    finally:
        tok.padding_side = "left"
    with torch.no_grad():
        logits = model(**enc).logits.float()
    return logits[enc["attention_mask"].bool()]


# --------------------------------------------------------------------------- checkpoint

@pytest.mark.parametrize("kind", ["glm", "glm4"])
def test_awq_checkpoint_loads_in_plain_transformers(quantized: Callable[[str], Quantized],
                                                    kind: str) -> None:
    path, float_model, tok = quantized(kind)
    qcfg = json.loads((path / "config.json").read_text())["quantization_config"]
    assert qcfg["quant_method"] == "awq" and qcfg["version"] == "gemm" and qcfg["bits"] == 4
    keys = set(load_file(path / "model.safetensors"))
    assert any(".mlp.gate_up_proj.qweight" in k for k in keys)
    assert not any(".mlp.gate_proj." in k or ".mlp.up_proj." in k for k in keys)
    assert (path / "tokenizer.json").exists()

    model = AutoModelForCausalLM.from_pretrained(path)
    assert awq.is_awq_model(model) and not awq.is_awq_model(float_model)
    got, want = _logits(model, tok), _logits(float_model, tok)
    assert torch.isfinite(got).all()
    # Measured on these seeds: cosine ~0.88, top-1 agreement ~0.42 (plain round-to-nearest
    # INT4 of the same weights gives the same; the random tiny model is very sensitive).
    # Broken paths land far below: gate/up halves swapped -> cosine 0.38, top-1 0.04;
    # gate_up left unfused (random init) -> cosine 0.2, top-1 0.0.
    cos = torch.nn.functional.cosine_similarity(got, want, dim=-1)
    top1 = (got.argmax(-1) == want.argmax(-1)).float().mean()
    assert cos.mean() > 0.8, f"mean cosine {cos.mean():.3f}"
    assert top1 > 0.3, f"top-1 agreement {top1:.3f}"


def test_load_awq_model(quantized: Callable[[str], Quantized]) -> None:
    path, _, _ = quantized("glm")
    model = awq.load_awq_model(path)
    assert not model.training and awq.is_awq_model(model)


def test_load_awq_model_errors(quantized: Callable[[str], Quantized], tmp_path: Path) -> None:
    path, _, _ = quantized("glm")
    with pytest.raises(ModelLoadError, match="no config.json"):
        awq.load_awq_model(tmp_path / "nowhere")
    with pytest.raises(ModelLoadError, match="not an AWQ checkpoint"):
        awq.load_awq_model(path.parent / "float")

    no_weights = _copy(path, tmp_path / "no-weights")
    (no_weights / "model.safetensors").unlink()
    with pytest.raises(ModelLoadError, match="No model.safetensors"):
        awq.load_awq_model(no_weights)

    # The Marlin AWQ kernel exists only for CUDA: asking for it on CPU finds no kernel.
    marlin = _copy(path, tmp_path / "marlin")
    config = json.loads((marlin / "config.json").read_text())
    config["quantization_config"]["backend"] = "marlin"
    (marlin / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelLoadError, match="No AWQ kernel"):
        awq.load_awq_model(marlin)

    if not torch.cuda.is_available():
        with pytest.raises(ModelLoadError, match="not available"):
            awq.load_awq_model(path, device="cuda")


def test_load_awq_model_rejects_split_gate_up(quantized: Callable[[str], Quantized],
                                              tmp_path: Path) -> None:
    """A checkpoint as gptqmodel writes it (gate/up split) is refused, then fixed by refusing."""
    path, _, _ = quantized("glm")
    split = _copy(path, tmp_path / "split")
    fused = load_file(split / "model.safetensors")
    save_file(_split_gate_up(fused), split / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(ModelLoadError, match="refuse_gate_up"):
        awq.load_awq_model(split)
    assert awq.refuse_gate_up(split) == 2
    again = load_file(split / "model.safetensors")
    assert again.keys() == fused.keys()
    assert all(torch.equal(again[k], fused[k]) for k in fused)
    awq.load_awq_model(split)


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def _split_gate_up(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Undo the fusion: AWQ tensors are [in, out], gate first."""
    out = {}
    for key, value in tensors.items():
        if ".mlp.gate_up_proj." in key:
            gate, up = value.chunk(2, dim=1)
            out[key.replace("gate_up_proj", "gate_proj")] = gate.contiguous()
            out[key.replace("gate_up_proj", "up_proj")] = up.contiguous()
        else:
            out[key] = value
    return out


# --------------------------------------------------------------------------- refuse_gate_up

def _write_checkpoint(root: Path, model_type: str, shards: dict[str, dict[str, torch.Tensor]],
                      skip: list[str]) -> None:
    root.mkdir()
    config = {"model_type": model_type,
              "quantization_config": {"quant_method": "awq", "modules_to_not_convert": skip}}
    (root / "config.json").write_text(json.dumps(config))
    for name, tensors in shards.items():
        save_file(tensors, root / name)
    if len(shards) > 1:
        weight_map = {k: name for name, tensors in shards.items() for k in tensors}
        (root / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))


def _gate_up_tensors(layer: int, seed: int) -> tuple[dict, dict]:
    """Distinct gate and up tensors of one MLP: AWQ-packed [in, out] plus a float bias."""
    g = torch.Generator().manual_seed(seed)
    prefix = f"model.layers.{layer}.mlp"

    def part(name: str) -> dict[str, torch.Tensor]:
        return {f"{prefix}.{name}.qweight": torch.randint(-2**31, 2**31 - 1, (16, 4),
                                                          dtype=torch.int32, generator=g),
                f"{prefix}.{name}.qzeros": torch.randint(0, 2**31 - 1, (2, 4), dtype=torch.int32,
                                                         generator=g),
                f"{prefix}.{name}.scales": torch.rand(2, 32, generator=g).half(),
                f"{prefix}.{name}.bias": torch.rand(32, generator=g).half()}

    return part("gate_proj"), part("up_proj")


def test_refuse_gate_up_single_file(tmp_path: Path) -> None:
    gate, up = _gate_up_tensors(0, seed=0)
    other = {"model.layers.0.mlp.down_proj.qweight": torch.ones(8, 2, dtype=torch.int32)}
    skip = ["model.layers.0.mlp.gate_proj", "model.layers.0.mlp.up_proj", "lm_head"]
    _write_checkpoint(tmp_path / "ck", "glm", {"model.safetensors": {**gate, **up, **other}}, skip)

    assert awq.refuse_gate_up(tmp_path / "ck") == 1
    got = load_file(tmp_path / "ck" / "model.safetensors")
    p = "model.layers.0.mlp"
    fused = {f"{p}.gate_up_proj.{s}" for s in ("qweight", "qzeros", "scales", "bias")}
    assert set(got) == fused | set(other)
    for suffix, axis in [("qweight", 1), ("qzeros", 1), ("scales", 1), ("bias", 0)]:
        want = torch.cat([gate[f"{p}.gate_proj.{suffix}"], up[f"{p}.up_proj.{suffix}"]], dim=axis)
        assert torch.equal(got[f"{p}.gate_up_proj.{suffix}"], want), suffix
    down = "model.layers.0.mlp.down_proj.qweight"
    assert torch.equal(got[down], other[down])
    config = json.loads((tmp_path / "ck" / "config.json").read_text())
    skip = config["quantization_config"]["modules_to_not_convert"]
    assert skip == [f"{p}.gate_up_proj", "lm_head"]
    # Already fused: nothing left to do.
    assert awq.refuse_gate_up(tmp_path / "ck") == 0
    assert load_file(tmp_path / "ck" / "model.safetensors").keys() == got.keys()


def test_refuse_gate_up_across_shards(tmp_path: Path) -> None:
    """Gate and up of one MLP in different shards; the index follows."""
    gate0, up0 = _gate_up_tensors(0, seed=1)
    gate1, up1 = _gate_up_tensors(1, seed=2)
    shards = {"model-00001-of-00002.safetensors": {**gate0, **up1},
              "model-00002-of-00002.safetensors": {**up0, **gate1}}
    _write_checkpoint(tmp_path / "ck", "glm4", shards, [])

    assert awq.refuse_gate_up(tmp_path / "ck") == 2
    index = json.loads((tmp_path / "ck" / "model.safetensors.index.json").read_text())["weight_map"]
    assert all("gate_up_proj" in k for k in index) and len(index) == 8
    for layer, gate, up in [(0, gate0, up0), (1, gate1, up1)]:
        p = f"model.layers.{layer}.mlp"
        shard = load_file(tmp_path / "ck" / index[f"{p}.gate_up_proj.qweight"])
        want = torch.cat([gate[f"{p}.gate_proj.qweight"], up[f"{p}.up_proj.qweight"]], dim=1)
        assert torch.equal(shard[f"{p}.gate_up_proj.qweight"], want)
    on_disk = set(load_file(tmp_path / "ck" / "model-00001-of-00002.safetensors"))
    on_disk |= set(load_file(tmp_path / "ck" / "model-00002-of-00002.safetensors"))
    assert on_disk == set(index)


def test_refuse_gate_up_leaves_other_architectures_alone(tmp_path: Path) -> None:
    gate, up = _gate_up_tensors(0, seed=3)
    _write_checkpoint(tmp_path / "ck", "llama", {"model.safetensors": {**gate, **up}}, [])
    assert awq.refuse_gate_up(tmp_path / "ck") == 0
    assert set(load_file(tmp_path / "ck" / "model.safetensors")) == set(gate) | set(up)


def test_refuse_gate_up_needs_both_halves(tmp_path: Path) -> None:
    gate, _ = _gate_up_tensors(0, seed=4)
    _write_checkpoint(tmp_path / "ck", "glm", {"model.safetensors": gate}, [])
    with pytest.raises(ModelLoadError, match="no matching"):
        awq.refuse_gate_up(tmp_path / "ck")


# --------------------------------------------------------------------------- quantize errors

def test_quantize_to_awq_errors(quantized: Callable[[str], Quantized], tmp_path: Path,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    path, _, _ = quantized("glm")
    src = path.parent / "float"
    with pytest.raises(InputError, match="calibration"):
        awq.quantize_to_awq(src, tmp_path / "a", [])
    with pytest.raises(InputError, match="bits must be 4"):
        awq.quantize_to_awq(src, tmp_path / "a", CALIB, bits=8)
    with pytest.raises(InputError, match="group_size 96"):
        awq.quantize_to_awq(src, tmp_path / "b", CALIB, group_size=96)
    with pytest.raises(InputError, match="not empty"):
        awq.quantize_to_awq(src, path, CALIB, group_size=GROUP)
    with pytest.raises(ModelLoadError, match="no config.json"):
        awq.quantize_to_awq(tmp_path / "missing", tmp_path / "c", CALIB)
    monkeypatch.setitem(sys.modules, "gptqmodel", None)  # import now fails
    with pytest.raises(MissingExtraError, match="gptqmodel"):
        awq.quantize_to_awq(src, tmp_path / "d", CALIB)


# --------------------------------------------------------------------------- mixed LoRA batches

def _lora_model(path: Path) -> PeftModel:
    """The model at ``path`` (AWQ or float) with two non-zero LoRA adapters, a1 and a2, on
    q/v_proj."""
    if (path / "config.json").read_text().find('"quant_method"') >= 0:
        model = awq.load_awq_model(path)
    else:
        model = AutoModelForCausalLM.from_pretrained(path).eval()

    def config() -> LoraConfig:
        return LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"],
                          init_lora_weights=False)

    torch.manual_seed(1)
    peft_model = get_peft_model(model, config(), adapter_name="a1")
    torch.manual_seed(2)
    peft_model.add_adapter("a2", config())
    peft_model.eval()
    if awq.is_awq_model(model):
        assert isinstance(peft_model.base_model.model.model.layers[0].self_attn.q_proj,
                          AwqLoraLinear)
    return peft_model


@pytest.fixture(scope="module")
def lora_model(quantized: Callable[[str], Quantized]) -> tuple[PeftModel, Any]:
    path, _, tok = quantized("glm")
    return _lora_model(path), tok


def _encode(tok: Any, prompts: list[str]) -> dict[str, torch.Tensor]:
    chats = [[{"role": "user", "content": p}] for p in prompts]
    return tok.apply_chat_template(chats, add_generation_prompt=True, padding=True,
                                   return_dict=True, return_tensors="pt")


def _generate(model: PeftModel, enc: dict[str, torch.Tensor], **kwargs: Any) -> torch.Tensor:
    """Greedy new tokens, a fixed count (min_new_tokens keeps rows from stopping early)."""
    with torch.inference_mode():
        out = model.generate(**enc, max_new_tokens=6, min_new_tokens=6, do_sample=False, **kwargs)
    return out[:, enc["input_ids"].shape[1]:]


@contextlib.contextmanager
def _only(model: PeftModel, adapter: str) -> Iterator[None]:
    """Run with a single adapter active through peft's own (non-mixed) forward."""
    if adapter == BASE_ADAPTER:
        with model.disable_adapter():
            yield
        return
    previous = model.active_adapter
    model.set_adapter(adapter)
    try:
        yield
    finally:
        model.set_adapter(previous)


@contextlib.contextmanager
def _routed(model: PeftModel, names: list[str]) -> Iterator[None]:
    """Rows in ``names`` order, each with its own adapter, by the engine's stacked routing."""
    stacks = StackedLora.build(model, ["a1", "a2"])
    assert isinstance(stacks, StackedLora), stacks
    with stacks.routed(stacks.onehot(names, len(names))):
        yield


def _greedy(model: PeftModel, enc: dict[str, torch.Tensor],
            **kwargs: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """Greedy new tokens [B, S] and the scores they were chosen from [B, S, V] (EOS masked by
    min_new_tokens shows as a large negative number, the same in every run)."""
    with torch.inference_mode():
        out = model.generate(**enc, max_new_tokens=12, min_new_tokens=12, do_sample=False,
                             output_scores=True, return_dict_in_generate=True, **kwargs)
    scores = torch.nan_to_num(torch.stack(out.scores, 1).float(), neginf=-1e4)  # [B, S, V]
    return out.sequences[:, enc["input_ids"].shape[1]:], scores


@pytest.fixture(scope="module", params=["awq", "float"])
def any_lora_model(request: pytest.FixtureRequest,
                   quantized: Callable[[str], Quantized]) -> tuple[PeftModel, Any]:
    """The INT4 model with adapters a1, a2, and the float model it was quantized from, likewise."""
    path, _, tok = quantized("glm")
    return _lora_model(path if request.param == "awq" else path.parent / "float"), tok


def test_mixed_batch_generate_matches_rows_alone(any_lora_model: tuple[PeftModel, Any]) -> None:
    """Each row of a padded mixed-adapter batch decodes as it does alone, by the rule of
    tests/greedy_match.py: logits within the dtype tolerance, tokens equal except after a
    near-tie."""
    model, tok = any_lora_model
    tol = logit_tolerance(model)
    names = ["__base__", "a1", "a2"]
    enc = _encode(tok, PROMPTS)
    assert (enc["attention_mask"] == 0).any(), "rows should be left-padded"
    with _routed(model, names):
        batched, batched_scores = _greedy(model, enc)
    compared = 0
    for i, (prompt, name) in enumerate(zip(PROMPTS, names)):
        with _only(model, name):
            alone, alone_scores = _greedy(model, _encode(tok, [prompt]))
        compared += assert_greedy_match(alone[0].tolist(), alone_scores[0], batched[i].tolist(),
                                        batched_scores[i], tol, f"row {i} ({name})")
    assert compared >= 6, "too few steps compared to mean anything"


def test_mixed_batch_rows_follow_their_own_adapter(any_lora_model: tuple[PeftModel, Any]) -> None:
    """Same prompt on every row: base rows agree with each other; each adapter row differs
    from base and from the other adapter by far more than rounding, and is a greedy decode
    of its own adapter, not of a neighbour's."""
    model, tok = any_lora_model
    tol = logit_tolerance(model)
    names = ["__base__", "a1", "a2", "__base__"]
    with _routed(model, names):
        tokens, scores = _greedy(model, _encode(tok, [PROMPTS[0]] * 4))
    assert_greedy_match(tokens[0].tolist(), scores[0], tokens[3].tolist(), scores[3], tol, "base rows")
    for i, j in ((0, 1), (0, 2), (1, 2)):
        gap = float((scores[i, 0] - scores[j, 0]).abs().max())
        assert gap > 20 * tol, f"rows {i} and {j} share their first-step logits ({gap:.3g})"
    prompt = prompt_ids(tok, [{"role": "user", "content": PROMPTS[0]}])
    for i, name in enumerate(names):
        got = tokens[i].tolist()
        logits = teacher_forced_logits(model, prompt, got, name)
        assert_near_greedy(logits, got, tol, f"row {i} ({name})")
        wrong = names[(i + 1) % 3]
        with pytest.raises(AssertionError, match="below the best logit"):
            assert_near_greedy(teacher_forced_logits(model, prompt, got, wrong), got, tol, wrong)


def test_mixed_forward_rows_equal_single_adapter_forward(lora_model: tuple[PeftModel, Any]) -> None:
    """Layer level: each row equals peft's own forward with that row's adapter active.

    Base rows come from the very same kernel call, so they match bit for bit; adapter rows
    go through the stacked LoRA matmuls, whose float32 rounding may differ in the last bits
    from peft's own product.
    """
    model, _ = lora_model
    layer = model.base_model.model.model.layers[0].self_attn.q_proj
    x = torch.randn(4, 5, HIDDEN, generator=torch.Generator().manual_seed(0)).to(model.dtype)
    names = ["a2", "__base__", "a1", "a2"]
    with torch.inference_mode():
        with _routed(model, names):
            mixed = layer(x)
        for i, name in enumerate(names):
            with _only(model, name):
                want = layer(x)
            if name == BASE_ADAPTER:
                assert torch.equal(mixed[i], want[i]), f"row {i} ({name})"
            torch.testing.assert_close(mixed[i], want[i], rtol=1e-5, atol=1e-5,
                                       msg=lambda m, i=i, name=name: f"row {i} ({name}): {m}")
