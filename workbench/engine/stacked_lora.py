"""Every loaded LoRA adapter of a layer as one pair of matrices, chosen per row by a tensor.

PEFT's mixed-adapter forward picks each row's adapter in Python (``set(adapter_names)`` and
index lists, in every LoRA layer, on every call), so a captured decode step would be
specialised to one mix of rows. Here the choice is data: each LoRA layer's adapters are
concatenated, A as [in, N*r] and B (scaling folded in) as [N*r, out], ranks zero-padded to
the largest. A step computes ``x @ A`` for all N adapters at once, zeroes every block but the
row's own with a one-hot row mask [B, N] (all zeros for a base row), and multiplies by B:

    delta = ((x @ A).view(B, T, N, r) * onehot[:, None, :, None]).view(B, T, N*r) @ B

Two plain matmuls and a multiply, whatever the mix, so one graph serves every mix of a
bucket. Computing all N adapters' ``x @ A`` costs N times a single LoRA's (small next to the
base layer: r is 8-64 against thousands of base columns) and reads each weight once, where a
per-row gather of A and B would copy them once per row (vLLM's punica kernels index inside
the kernel instead; this is the plain-PyTorch equivalent).

This is the engine's one LoRA routing: prefill, decode (eager or captured) and
log-likelihood all run through ``routed``; PEFT only loads the adapter files and holds their
matrices. The deltas are added by forward hooks on peft's LoRA layers while peft's own LoRA is
switched off on those layers for the call, so the base layers, float or INT4 AWQ, run as they
always do; a step whose rows are all base registers no hook and only flips those flags.
Adapters with a LoRA variant (DoRA and others), a bias on B or LoRA on an embedding cannot be
stacked: ``build`` says why, and the engine refuses to load them (validation refuses them
before that, ``adapters/validate.py``).
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class StackedLayer:
    """One LoRA layer's adapters, concatenated in ``StackedLora.names`` order."""

    module: nn.Module
    # a: [in, N*r]; b: [N*r, out] (each adapter's scaling folded in; zeros where an
    # adapter has no LoRA on this layer or a smaller rank).
    a: torch.Tensor
    b: torch.Tensor
    rank: int

    def delta(self, x: torch.Tensor, onehot: torch.Tensor) -> torch.Tensor:
        # x: [B, T, in]; onehot: [B, N] -> [B, T, out]
        B, T = x.shape[0], x.shape[1]
        n = onehot.shape[1]
        xa = (x.to(self.a.dtype) @ self.a).view(B, T, n, self.rank)  # [B, T, N, r]
        xa = xa * onehot[:, None, :, None]
        return xa.view(B, T, n * self.rank) @ self.b  # [B, T, out]


class StackedLora:
    """The stacked adapters of a peft model; ``apply`` adds each row's delta during a call."""

    def __init__(self, names: list[str], layers: list[StackedLayer],
                 dtype: torch.dtype = torch.float32) -> None:
        self.names = names
        self.layers = layers
        self.dtype = dtype
        self._index = {name: i for i, name in enumerate(names)}

    @classmethod
    def build(cls, model: nn.Module, names: list[str], dtype: torch.dtype = torch.float32
              ) -> "StackedLora | str":
        """The stacks of ``names`` on ``model`` in the compute ``dtype`` (PEFT keeps adapter
        weights in float32; a bfloat16 step would otherwise run its LoRA products in
        float32 and cast back), or why they cannot be stacked."""
        from peft.tuners.lora import LoraLayer

        layers = []
        for mod_name, module in model.named_modules():
            if not isinstance(module, LoraLayer):
                continue
            reason = _unsupported(module, names)
            if reason:
                return f"{mod_name}: {reason}"
            if any(n in module.lora_A for n in names):
                layers.append(_stack(module, names, dtype))
        return cls(names, layers, dtype)

    def onehot(self, adapter_keys: list[str], rows: int, out: torch.Tensor | None = None,
               device: torch.device | str = "cpu") -> torch.Tensor:
        """Row masks [rows, N]: row i has a 1 in its adapter's column (none for base or padding)."""
        mask = out if out is not None else torch.zeros((rows, len(self.names)), dtype=self.dtype)
        mask.zero_()
        for i, key in enumerate(adapter_keys):
            j = self._index.get(key)
            if j is not None:
                mask[i, j] = 1
        return mask.to(device) if out is None else mask

    def unknown(self, adapter_keys: list[str]) -> list[str]:
        """Keys that are neither base nor a stacked adapter, sorted."""
        return sorted({k for k in adapter_keys if k != "__base__" and k not in self._index})

    @contextlib.contextmanager
    def routed(self, onehot: torch.Tensor | None) -> Iterator[None]:
        """Within the block, each LoRA layer runs its base layer alone (PEFT's own LoRA off)
        and, given ``onehot`` [B, N], adds its rows' deltas; ``None`` (every row base) adds
        nothing. The flag is set on these layers directly: PEFT's ``disable_adapter()`` first
        walks the whole model for its status, a sixth of a one-row SmolLM2 decode step on the
        CPU (profiled)."""
        handles = [] if onehot is None else [
            layer.module.register_forward_hook(_hook(layer, onehot)) for layer in self.layers]
        before = [layer.module._disable_adapters for layer in self.layers]
        for layer in self.layers:
            layer.module._disable_adapters = True
        try:
            yield
        finally:
            for layer, flag in zip(self.layers, before):
                layer.module._disable_adapters = flag
            for handle in handles:
                handle.remove()


def _hook(layer: StackedLayer, onehot: torch.Tensor):  # noqa: ANN202 - a torch hook
    def hook(module: nn.Module, args: tuple[torch.Tensor, ...], output: torch.Tensor) -> torch.Tensor:
        return output + layer.delta(args[0], onehot).to(output.dtype)
    return hook


def _unsupported(module: nn.Module, names: list[str]) -> str:
    if any(n in getattr(module, "lora_embedding_A", {}) for n in names):
        return "LoRA on an embedding"
    for n in names:
        if n not in module.lora_A:
            continue
        if n in getattr(module, "lora_variant", {}):
            return f"adapter '{n}' uses a LoRA variant (such as DoRA)"
        if not isinstance(module.lora_A[n], nn.Linear) or module.lora_B[n].bias is not None:
            return f"adapter '{n}' is not a plain linear LoRA"
        if getattr(module, "fan_in_fan_out", False):
            return "fan-in/fan-out weights"
    return ""


def _stack(module: nn.Module, names: list[str], dtype: torch.dtype) -> StackedLayer:
    """Concatenate ``names``' A and B of one layer, ranks padded to the largest, in ``dtype``."""
    present = [n for n in names if n in module.lora_A]
    rank = max(module.lora_A[n].weight.shape[0] for n in present)
    ref_a, ref_b = module.lora_A[present[0]].weight, module.lora_B[present[0]].weight
    d_in, d_out = ref_a.shape[1], ref_b.shape[0]
    a = ref_a.new_zeros((d_in, len(names) * rank), dtype=dtype)  # [in, N*r]
    b = ref_b.new_zeros((len(names) * rank, d_out), dtype=dtype)  # [N*r, out]
    with torch.no_grad():
        for i, n in enumerate(names):
            if n not in module.lora_A:
                continue
            wa, wb = module.lora_A[n].weight, module.lora_B[n].weight  # [r, in], [out, r]
            r = wa.shape[0]
            a[:, i * rank:i * rank + r] = wa.t()
            b[i * rank:i * rank + r] = wb.t() * module.scaling[n]
    return StackedLayer(module, a, b, rank)
