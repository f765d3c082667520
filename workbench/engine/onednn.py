"""bfloat16 linear layers with their weights packed once for oneDNN, on the CPU.

A decode step is some two hundred small matmuls (16 rows against [576, N] weights on
SmolLM2-135M). Through ``F.linear`` each call brings the dense weight into oneDNN's blocked
layout again; packed once at load, the same product is bit-identical and about twice as fast
per call (measured: [16, 576] x [576, 1536] 123 -> 60 us, the 49k-row head 4.6 -> 2.6 ms).

The packed tensor replaces the dense weight in place, so memory does not grow. It is opaque:
reading its values raises instead of returning wrong numbers, and only this engine's forward
reads it. The module stays an ``nn.Linear``, so PEFT still wraps it with LoRA layers (whose
own matrices stay dense), and its dtype, device and shape read as before. A weight shared
with another module (a head tied to the input embedding) stays dense: the embedding needs it.
Float32 and INT4 layers and other devices are left as they are.
"""
from __future__ import annotations

import logging
import types

import torch
from torch import nn

log = logging.getLogger(__name__)
# The row count oneDNN tunes the packed layout for: a full decode batch.
BATCH_HINT = 16


def supported(device: str | torch.device, dtype: torch.dtype) -> bool:
    """Packing applies to bfloat16 on a CPU whose torch has oneDNN."""
    return (torch.device(device).type == "cpu" and dtype == torch.bfloat16
            and torch.backends.mkldnn.is_available()
            and hasattr(torch.ops.mkldnn, "_reorder_linear_weight"))


def pack_linears(model: nn.Module, batch_hint: int = BATCH_HINT) -> int:
    """Pack every plain bfloat16 ``nn.Linear`` of ``model`` whose weight no other module
    shares; -> how many were packed."""
    counts: dict[int, int] = {}
    for module in model.modules():
        for param in module.parameters(recurse=False):
            counts[id(param)] = counts.get(id(param), 0) + 1
    packed = 0
    for module in model.modules():
        weight = getattr(module, "weight", None)
        if type(module) is not nn.Linear or weight is None or weight.dtype != torch.bfloat16:
            continue
        if weight.is_mkldnn or counts.get(id(weight), 0) > 1:
            continue
        if module.bias is not None and module.bias.dtype != torch.bfloat16:
            continue
        with torch.no_grad():
            module.weight = nn.Parameter(torch.ops.mkldnn._reorder_linear_weight(weight.detach(), batch_hint),
                                         requires_grad=False)
        module.forward = types.MethodType(_packed_forward, module)
        packed += 1
    log.info("packed %d bfloat16 linear layers for oneDNN", packed)
    return packed


def _packed_forward(self: nn.Linear, x: torch.Tensor) -> torch.Tensor:
    # x: [..., in] -> [..., out]
    return torch.ops.mkldnn._linear_pointwise(x, self.weight, self.bias, "none", [], "")
