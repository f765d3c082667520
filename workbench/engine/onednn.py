"""bfloat16 linear layers with their weights packed once for oneDNN, on the CPU.

A decode step is some two hundred small matmuls (16 rows against [576, N] weights on
SmolLM2-135M). Through ``F.linear`` each call brings the dense weight into oneDNN's blocked
layout again; packed once at load, the same product is bit-identical and about twice as fast
per call (measured: [16, 576] x [576, 1536] 123 -> 60 us, the 49k-row head 4.6 -> 2.6 ms).

Projections that read the same input (a layer's q, k and v; gate and up) are packed as one
weight and run as one product: the first member called computes all of them for that input,
the others take their slice (``FusedGroup``).

The packed tensor replaces the dense weight in place, so memory does not grow. It is opaque:
reading its values raises instead of returning wrong numbers, and only this engine's forward
reads it. The module stays an ``nn.Linear``, so PEFT still wraps it with LoRA layers (whose
own matrices stay dense), and its dtype, device and shape read as before. A weight shared
with another module stays dense, with one exception: a head tied to the input embedding (the
embedding needs the dense weight) gets a packed copy of its own. The head is a step's widest
product; packed, a 16-row decode step of SmolLM2-135M took 47.2 against 48.6 ms (the two
heads in alternate steps of one process), for 56 MiB more. Float32 and INT4 layers and other devices are left as they are.
"""
from __future__ import annotations

import logging
import types

import torch
from torch import nn
from transformers import PreTrainedModel

log = logging.getLogger(__name__)
# The row count oneDNN tunes the packed layout for: a full decode batch.
BATCH_HINT = 16


def supported(device: str | torch.device, dtype: torch.dtype) -> bool:
    """Packing applies to bfloat16 on a CPU whose torch has oneDNN."""
    return (torch.device(device).type == "cpu" and dtype == torch.bfloat16
            and torch.backends.mkldnn.is_available()
            and hasattr(torch.ops.mkldnn, "_reorder_linear_weight"))


# Sibling projections of one input, fused when every member is a plain bfloat16 Linear.
SIBLINGS = (("q_proj", "k_proj", "v_proj"), ("gate_proj", "up_proj"))


def pack_linears(model: nn.Module, batch_hint: int = BATCH_HINT) -> int:
    """Fuse sibling projections, then pack every other plain bfloat16 ``nn.Linear`` of
    ``model`` whose weight no other module shares; -> how many layers run packed."""
    uses: dict[int, int] = {}
    for module in model.modules():
        for param in module.parameters(recurse=False):
            uses[id(param)] = uses.get(id(param), 0) + 1
    fused = _fuse_siblings(model, uses, batch_hint)
    packed = 0
    for module in model.modules():
        if not _packable(module, uses):
            continue
        _pack(module, batch_hint)
        packed += 1
    packed += _pack_tied_head(model, batch_hint)
    log.info("packed %d bfloat16 linear layers for oneDNN (%d of them fused)", packed + fused, fused)
    return packed + fused


def _pack(module: nn.Linear, batch_hint: int) -> None:
    """``module`` runs on a packed copy of its weight (another module may keep the dense one)."""
    with torch.no_grad():
        packed = torch.ops.mkldnn._reorder_linear_weight(module.weight.detach(), batch_hint)
        module.weight = nn.Parameter(packed, requires_grad=False)
    module.forward = types.MethodType(_packed_forward, module)


def _pack_tied_head(model: nn.Module, batch_hint: int) -> int:
    """A bfloat16 head tied to the input embedding runs on a packed copy; -> 1 if it does."""
    if not isinstance(model, PreTrainedModel):
        return 0
    head, embed = model.get_output_embeddings(), model.get_input_embeddings()
    # Sharing is why the head gets a copy, so it is not counted against it here.
    if embed is None or not _packable(head, {}) or head.weight is not embed.weight:
        return 0
    _pack(head, batch_hint)
    return 1


def _packable(module: object, uses: dict[int, int]) -> bool:
    """A plain bfloat16 Linear not packed or fused yet, whose weight no other module shares."""
    if type(module) is not nn.Linear or getattr(module, "fused_into", None) is not None:
        return False
    weight, bias = module.weight, module.bias
    return (weight.dtype == torch.bfloat16 and not weight.is_mkldnn and uses.get(id(weight), 0) <= 1
            and (bias is None or bias.dtype == torch.bfloat16))


def _linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    # x: [..., in] -> [..., out], weight packed
    return torch.ops.mkldnn._linear_pointwise(x, weight, bias, "none", [], "")


def _packed_forward(self: nn.Linear, x: torch.Tensor) -> torch.Tensor:
    return _linear(x, self.weight, self.bias)


class FusedGroup:
    """Sibling projections as one packed weight; a member's call returns its slice of the
    product for that input, computed once per input."""

    def __init__(self, members: list[nn.Linear], batch_hint: int) -> None:
        self.sizes = [m.out_features for m in members]
        with torch.no_grad():
            dense = torch.cat([m.weight.detach() for m in members])  # [sum(out), in]
            bias = [m.bias for m in members]
            self.bias = torch.cat([b.detach() for b in bias]) if bias[0] is not None else None
            self.weight = torch.ops.mkldnn._reorder_linear_weight(dense, batch_hint)
        # The input last computed and its slices; the input is held, so ``is`` stays sound.
        self._x: torch.Tensor | None = None
        self._parts: tuple[torch.Tensor, ...] = ()
        self._taken: set[int] = set()

    def part(self, i: int, x: torch.Tensor) -> torch.Tensor:
        # x: [..., in] -> [..., sizes[i]]
        if x is not self._x or i in self._taken:
            y = _linear(x, self.weight, self.bias)
            self._x, self._parts, self._taken = x, y.split(self.sizes, -1), set()
        self._taken.add(i)
        out = self._parts[i]
        if len(self._taken) == len(self.sizes):  # every member served: let go of the input
            self._x, self._parts, self._taken = None, (), set()
        return out


def _fuse_siblings(model: nn.Module, uses: dict[int, int], batch_hint: int) -> int:
    """Fuse every group of ``SIBLINGS`` whose members are all packable and read inputs of one
    width; -> how many members were fused."""
    fused = 0
    for parent in model.modules():
        for names in SIBLINGS:
            members = [getattr(parent, n, None) for n in names]
            if not all(_packable(m, uses) for m in members):
                continue
            if len({m.in_features for m in members}) != 1 or len({m.bias is None for m in members}) != 1:
                continue
            group = FusedGroup(members, batch_hint)
            for i, m in enumerate(members):
                # The first member holds the group's packed weight (so the model's parameter
                # count stays right); the others an empty one of the same dtype and device,
                # which is all PEFT reads of a base layer's weight.
                held = group.weight if i == 0 else torch.empty(0, dtype=torch.bfloat16)
                m.weight = nn.Parameter(held, requires_grad=False)
                m.forward = types.MethodType(_member_forward(group, i), m)
                m.fused_into = group
            fused += len(members)
    return fused


def _member_forward(group: FusedGroup, i: int):  # noqa: ANN202 - a bound forward
    def forward(self: nn.Linear, x: torch.Tensor) -> torch.Tensor:
        return group.part(i, x)
    return forward
