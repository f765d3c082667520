"""INT4 AWQ checkpoints: quantize a float GLM checkpoint and load it for serving.

Quantization runs through gptqmodel (AWQ, GEMM layout); loading goes through plain
``transformers`` (which itself picks a gptqmodel kernel for the device). One gap between
the two is closed here: gptqmodel quantizes GLM's fused ``mlp.gate_up_proj`` as two linears
(``gate_proj`` and ``up_proj``) and saves them that way; transformers' GLM has only the fused
module, so it would leave ``gate_up_proj`` uninitialised (NaN logits). :func:`refuse_gate_up`
joins them back in the saved safetensors.

Mixed LoRA batches on an INT4 base need nothing here: the engine adds each row's LoRA delta
itself around the quantized linears (``engine/stacked_lora.py``).
"""
from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel

from workbench.errors import InputError, MissingExtraError, ModelLoadError

EXTRA = "awq"
# Architectures whose MLP is one fused gate+up linear in transformers (gate rows first:
# ``GlmMLP.forward`` does ``gate, up = gate_up_proj(x).chunk(2, dim=-1)``).
FUSED_GATE_UP_TYPES = frozenset({"glm", "glm4"})
# Which axis holds the output features of each saved tensor: AWQ GEMM packs qweight,
# qzeros and scales as [in, out]; an unquantized weight/bias is [out, ...].
_OUT_AXIS = {"qweight": 1, "qzeros": 1, "scales": 1, "weight": 0, "bias": 0}
_SINGLE_FILE = "model.safetensors"
_INDEX_FILE = "model.safetensors.index.json"


# --------------------------------------------------------------------------- quantize

def quantize_to_awq(src: str | Path, dst: str | Path, calib_texts: list[str], *,
                    bits: int = 4, group_size: int = 128, device: str = "cpu") -> Path:
    """Quantize the float checkpoint ``src`` to AWQ INT4 (GEMM) in ``dst``; returns ``dst``.

    ``src`` is a ``save_pretrained`` folder with its tokenizer. The result loads with plain
    ``AutoModelForCausalLM.from_pretrained(dst)``. gptqmodel's CPU thread count follows
    ``GPTQMODEL_CPU_WORKERS``, read once per process when gptqmodel first quantizes.
    """
    src, dst = Path(src), Path(dst)
    _ensure_cpu_workers()
    gptqmodel = _import_gptqmodel("AWQ quantization")
    config = _read_config(src)
    _check_quantizable(config, calib_texts, bits, group_size)
    if dst.exists() and any(dst.iterdir()):
        raise InputError(f"AWQ output folder {dst} already exists and is not empty.")
    tokenizer = _load_tokenizer(src)
    # sym=False keeps AWQ's zero points (``zero_point: true``): the usual AWQ GEMM layout,
    # and measurably closer to the float model than symmetric INT4.
    # Disk offload goes to a folder removed when quantization ends, error or not.
    with tempfile.TemporaryDirectory(prefix="awq-offload-") as offload:
        qconfig = gptqmodel.AWQConfig(bits=bits, group_size=group_size, sym=False,
                                      offload_to_disk_path=offload)
        qmodel = _load_for_quantization(gptqmodel, src, qconfig, device)
        _run_quantize(gptqmodel, qmodel, calib_texts, tokenizer, device)
        qmodel.save(str(dst))
    tokenizer.save_pretrained(dst)
    refuse_gate_up(dst)
    return dst


def _ensure_cpu_workers() -> None:
    """Give gptqmodel's CPU thread pool the 2 workers its model-loader sub-pool needs.

    The pool defaults to half the cores, so on machines with fewer than 4 cores it cannot
    be built at all ("requests 2 workers but parent 'cpu' only has 1"). It is built lazily
    on the first quantize, so setting the variable here still takes effect. An explicit
    ``GPTQMODEL_CPU_WORKERS`` always wins.
    """
    if "GPTQMODEL_CPU_WORKERS" not in os.environ and (os.cpu_count() or 1) < 4:
        os.environ["GPTQMODEL_CPU_WORKERS"] = "2"


def _import_gptqmodel(feature: str) -> Any:
    try:
        import gptqmodel
    except ImportError as exc:
        raise MissingExtraError("gptqmodel", feature, EXTRA) from exc
    return gptqmodel


def _check_quantizable(config: dict[str, Any], calib_texts: list[str], bits: int,
                       group_size: int) -> None:
    """Fail early with a readable message instead of an assertion deep in gptqmodel."""
    # AWQ GEMM checkpoints, as transformers loads them, pack 8 INT4 values per int32.
    if bits != 4:
        raise InputError(f"AWQ GEMM checkpoints are INT4: bits must be 4, not {bits}.")
    if not calib_texts or not all(isinstance(t, str) and t.strip() for t in calib_texts):
        raise InputError("AWQ calibration needs at least one non-empty text.")
    widths = {k: config.get(k) for k in ("hidden_size", "intermediate_size")}
    bad = {k: v for k, v in widths.items() if isinstance(v, int) and v % group_size}
    if bad:
        raise InputError(f"AWQ group_size {group_size} must divide the layer widths {bad}.")


def _load_tokenizer(src: Path) -> Any:
    try:
        return AutoTokenizer.from_pretrained(src)
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"No tokenizer in {src}; AWQ calibration needs one: {exc}") from exc


def _load_for_quantization(gptqmodel: Any, src: Path, qconfig: Any, device: str) -> Any:
    try:
        return gptqmodel.GPTQModel.load(str(src), qconfig, device=device)
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise ModelLoadError(f"gptqmodel could not load {src} for AWQ on {device!r}: "
                             f"{exc}") from exc


def _run_quantize(gptqmodel: Any, qmodel: Any, calib_texts: list[str], tokenizer: Any,
                  device: str) -> None:
    # The pure-torch AWQ kernel is the one that runs on CPU; elsewhere let gptqmodel pick.
    backend = gptqmodel.BACKEND.AWQ_TORCH if device == "cpu" else gptqmodel.BACKEND.AUTO
    try:
        # calibration_data_min_length=1: chat turns are short, and gptqmodel's default (10
        # tokens) would silently drop them from calibration.
        qmodel.quantize(list(calib_texts), tokenizer=tokenizer, backend=backend,
                        calibration_data_min_length=1)
    except AssertionError as exc:
        # gptqmodel asserts on layer shapes it cannot tile (e.g. output widths that are not a
        # multiple of 64 in the clip search) without a message.
        raise InputError("gptqmodel cannot AWQ-quantize these layer shapes; use widths that "
                         f"are multiples of 64 and of group_size. ({exc!r})") from exc


# --------------------------------------------------------------------------- re-fuse

def refuse_gate_up(checkpoint_dir: str | Path) -> int:
    """Join split ``mlp.gate_proj``/``mlp.up_proj`` tensors into ``mlp.gate_up_proj``.

    Rewrites the safetensors (single file, or shards plus their index) in place and renames
    the two modules in ``modules_to_not_convert`` of the quantization config. Returns how
    many MLPs were fused; 0 when there is nothing to do (other architectures, or a
    checkpoint that is already fused), so calling it twice is harmless.
    """
    root = Path(checkpoint_dir)
    if _read_config(root).get("model_type") not in FUSED_GATE_UP_TYPES:
        return 0
    weight_map = _weight_map(root)
    pairs = _gate_up_pairs(root, weight_map)
    if not pairs:
        return 0
    dropped = set(pairs) | set(pairs.values())
    # Up halves stored in another shard than their gate are read before any shard is
    # rewritten, since rewriting drops them from their own shard.
    foreign = {up: _read_tensor(root / weight_map[up], up) for gate, up in pairs.items()
               if weight_map[up] != weight_map[gate]}
    for fname in sorted({weight_map[k] for k in dropped}):
        _rewrite_shard(root, fname, weight_map, pairs, dropped, foreign)
    _finish_refuse(root, weight_map, dropped)
    return len({k.split(".mlp.gate_proj.")[0] for k in pairs})


def _gate_up_pairs(root: Path, weight_map: dict[str, str]) -> dict[str, str]:
    """gate tensor name -> its up tensor name; every gate tensor must have one."""
    pairs = {}
    for key in weight_map:
        if ".mlp.gate_proj." in key:
            up_key = key.replace(".mlp.gate_proj.", ".mlp.up_proj.")
            if up_key not in weight_map:
                raise ModelLoadError(f"{root}: {key} has no matching {up_key}.")
            pairs[key] = up_key
    return pairs


def _rewrite_shard(root: Path, fname: str, weight_map: dict[str, str], pairs: dict[str, str],
                   dropped: set[str], foreign: dict[str, torch.Tensor]) -> None:
    """Write the fused tensors for the gates stored in ``fname`` and drop gate/up there."""
    from safetensors.torch import load_file, save_file

    tensors = load_file(root / fname)
    for gate_key, up_key in pairs.items():
        if weight_map[gate_key] != fname:
            continue
        up = tensors[up_key] if up_key in tensors else foreign[up_key]
        fused_key = gate_key.replace(".mlp.gate_proj.", ".mlp.gate_up_proj.")
        tensors[fused_key] = _fuse(gate_key, tensors[gate_key], up)
        weight_map[fused_key] = fname
    kept = {k: v for k, v in tensors.items() if k not in dropped}
    # Write beside, then swap: the loaded tensors may still map the old file, and a crash
    # mid-write must not leave a truncated shard.
    tmp = root / (fname + ".refuse-tmp")
    save_file(kept, tmp, metadata={"format": "pt"})
    del tensors, kept
    os.replace(tmp, root / fname)


def _read_tensor(path: Path, key: str) -> torch.Tensor:
    from safetensors import safe_open

    with safe_open(path, framework="pt") as f:
        return f.get_tensor(key)


def _fuse(key: str, gate: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
    suffix = key.rsplit(".", 1)[-1]
    if suffix not in _OUT_AXIS:
        raise ModelLoadError(f"Cannot fuse {key}: unknown tensor kind '{suffix}'.")
    axis = _OUT_AXIS[suffix] if gate.dim() > 1 else 0
    other = [s for i, s in enumerate(gate.shape) if i != axis]
    if other != [s for i, s in enumerate(up.shape) if i != axis] or gate.dtype != up.dtype:
        raise ModelLoadError(f"Cannot fuse {key}: gate {tuple(gate.shape)} and up "
                             f"{tuple(up.shape)} do not line up.")
    # AWQ packs 8 nibbles per int32 along the output axis, in groups that never straddle
    # the gate/up boundary (widths are multiples of 8), so concatenation stays valid.
    return torch.cat([gate, up], dim=axis).contiguous()


def _finish_refuse(root: Path, weight_map: dict[str, str], dropped: set[str]) -> None:
    """Drop the removed keys from a shard index and rename modules in the config."""
    index_path = root / _INDEX_FILE
    if index_path.exists():
        index = json.loads(index_path.read_text())
        index["weight_map"] = {k: v for k, v in sorted(weight_map.items()) if k not in dropped}
        index_path.write_text(json.dumps(index, indent=2))
    for name in ("config.json", "quantize_config.json"):
        path = root / name
        if not path.exists():
            continue
        data = json.loads(path.read_text())
        qcfg = data.get("quantization_config", data)
        skip = qcfg.get("modules_to_not_convert")
        if skip:
            renamed = [re.sub(r"mlp\.(gate|up)_proj$", "mlp.gate_up_proj", m) for m in skip]
            qcfg["modules_to_not_convert"] = list(dict.fromkeys(renamed))
            path.write_text(json.dumps(data, indent=2))


def _weight_map(root: Path) -> dict[str, str]:
    """tensor name -> safetensors file, for single-file and sharded checkpoints."""
    from safetensors import safe_open

    index_path = root / _INDEX_FILE
    if index_path.exists():
        return dict(json.loads(index_path.read_text())["weight_map"])
    single = root / _SINGLE_FILE
    if not single.exists():
        raise ModelLoadError(f"No {_SINGLE_FILE} or {_INDEX_FILE} in {root}.")
    with safe_open(single, framework="pt") as f:
        return {k: _SINGLE_FILE for k in f.keys()}


def _read_config(root: Path) -> dict[str, Any]:
    path = root / "config.json"
    if not path.is_file():
        raise ModelLoadError(f"{root} is not a model checkpoint folder (no config.json).")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ModelLoadError(f"{path} is not valid JSON: {exc}") from exc


# --------------------------------------------------------------------------- load

def load_awq_model(path: str | Path, device: str = "cpu", *,
                   dtype: torch.dtype | None = None) -> PreTrainedModel:
    """Load an AWQ checkpoint for serving, in eval mode, on ``device``.

    ``dtype`` is the compute dtype of activations and unquantized layers. By default it is
    float16 on CUDA (what the AWQ GPU kernels run) and float32 elsewhere: with bfloat16 on
    CPU, rounding makes a row of a left-padded batch drift from the same row run alone
    within a few greedy tokens, and most CPUs have no fast bfloat16 anyway.

    Use this instance for inference only. A module that has run an INT4 forward under
    ``no_grad``/``inference_mode`` gives wrong gradients afterwards, so training (LoRA on
    the quantized base) must load its own instance rather than reuse a serving one.
    """
    root = Path(path)
    config = _read_config(root)
    qcfg = config.get("quantization_config") or {}
    if str(qcfg.get("quant_method", "")).lower() != "awq":
        raise ModelLoadError(f"{root} is not an AWQ checkpoint "
                             f"(quant_method={qcfg.get('quant_method')!r}).")
    _weight_map(root)  # raises a ModelLoadError when the weight files are missing
    _import_gptqmodel("Loading AWQ checkpoints")
    _check_device(device)
    if dtype is None:
        dtype = torch.float16 if device.startswith("cuda") else torch.float32
    try:
        model, info = AutoModelForCausalLM.from_pretrained(
            root, dtype=dtype, device_map=device, output_loading_info=True)
    except (ValueError, RuntimeError, ImportError, NotImplementedError, OSError) as exc:
        raise ModelLoadError(f"No AWQ kernel could load {root} on {device!r}: {exc}") from exc
    missing = sorted(info.get("missing_keys") or [])
    if missing:
        hint = " (run refuse_gate_up on the folder)" if any("gate_up" in k for k in missing) else ""
        raise ModelLoadError(f"{root} lacks weights {missing[:4]}{hint}.")
    return model.eval()


def _check_device(device: str) -> None:
    try:
        kind = torch.device(device).type
    except RuntimeError as exc:
        raise ModelLoadError(f"Unknown device {device!r}: {exc}") from exc
    available = {"cpu": True, "cuda": torch.cuda.is_available(),
                 "xpu": hasattr(torch, "xpu") and torch.xpu.is_available(),
                 "mps": torch.backends.mps.is_available()}
    if not available.get(kind, False):
        raise ModelLoadError(f"Device {device!r} is not available here, so no AWQ kernel can "
                             "run on it; use device='cpu'.")


def is_awq_model(model: Any) -> bool:
    """True for an AWQ-quantized transformers model, also when wrapped in a PeftModel."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    qcfg = getattr(getattr(base, "config", None), "quantization_config", None)
    if qcfg is None:
        return False
    if isinstance(qcfg, dict):
        method = qcfg.get("quant_method")
    else:
        method = getattr(qcfg, "quant_method", None)
    return str(getattr(method, "value", method)).lower() == "awq"
