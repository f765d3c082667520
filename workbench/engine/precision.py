"""The engine's compute dtype: weights, activations and keys/values in one floating type.

A decode step on the CPU is bound by reading the weights (SmolLM2-135M: 540 MB in float32,
read once per step whatever the batch), so halving their bytes is the largest lever there.
Where the CPU has AVX-512 BF16 or AMX, oneDNN runs bfloat16 matmuls natively (fp32
accumulation), and ``auto`` picks bfloat16; elsewhere bfloat16 would be emulated and slower,
and ``auto`` keeps float32. On a GPU ``auto`` keeps the dtype the model was loaded in (its
preset's). Logits are cast to float32 before sampling and log-softmax (``sampling.py``,
``loglik.py``), so the choice of a token or a score never rounds in bfloat16.

Only parameters are cast: buffers such as the rotary embedding's ``inv_freq`` stay float32
(positions up to thousands need more than bfloat16's 8 mantissa bits). An INT4 AWQ base keeps
the compute dtype it was loaded with: its kernels and scales were chosen at load time.
"""
from __future__ import annotations

import functools
import logging
from pathlib import Path

import torch

from workbench.errors import UnknownNameError
from workbench.models.loaded import LoadedModel

log = logging.getLogger(__name__)
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}
NAMES = ("auto", *DTYPES)
# /proc/cpuinfo flags that mean native bfloat16 matmuls (AVX-512 BF16, AMX tiles).
BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})


@functools.lru_cache(maxsize=1)
def cpu_has_bf16(cpuinfo: str = "/proc/cpuinfo") -> bool:
    """True when the CPU advertises AVX-512 BF16 or AMX-BF16 (Linux; False elsewhere)."""
    try:
        text = Path(cpuinfo).read_text(errors="replace")
    except OSError:
        return False
    for line in text.splitlines():
        if line.startswith("flags"):
            return bool(BF16_FLAGS & set(line.split(":", 1)[-1].split()))
    return False


def resolve(name: str, device: str | torch.device, current: torch.dtype) -> torch.dtype:
    """The dtype ``name`` means on ``device`` for a model now in ``current``; unknown names
    are refused with the known ones."""
    if name not in NAMES:
        raise UnknownNameError("engine dtype", name, NAMES)
    if name != "auto":
        return DTYPES[name]
    if torch.device(device).type != "cpu":
        return current
    return torch.bfloat16 if cpu_has_bf16() else torch.float32


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def compute_dtype(model: torch.nn.Module) -> torch.dtype:
    """The dtype activations run in: the input embeddings' (float for INT4 bases too)."""
    return model.get_input_embeddings().weight.dtype


def apply(loaded: LoadedModel, name: str) -> torch.dtype:
    """Cast ``loaded``'s float parameters to the dtype ``name`` resolves to, in place, and
    relabel its precision; an INT4 base is left as loaded. Returns the compute dtype."""
    current = compute_dtype(loaded.model)
    wanted = resolve(name, loaded.device, current)
    if loaded.is_awq or wanted == current:
        return current
    with torch.no_grad():
        for param in loaded.model.parameters():  # tied weights are one Parameter: cast once
            if param.is_floating_point():
                param.data = param.data.to(wanted)
    old, new = dtype_name(current), dtype_name(wanted)
    label = loaded.precision
    loaded.precision = label.replace(old, new, 1) if label.startswith(old) else f"{new} ({label})"
    log.info("engine computes in %s (model loaded as %s)", new, old)
    return wanted
