"""The loaded base model handed to the engine."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # importing transformers takes seconds; a CLI typo must not wait for it
    from transformers import PreTrainedModel, PreTrainedTokenizerBase


@dataclass
class LoadedModel:
    """A base model ready to serve, with what callers need to know about it."""

    # Catalog name it was loaded by (preset name, or the id/path given).
    name: str
    # Hub id or local path the weights came from; adapters must name this base.
    model_id: str
    # The causal LM, in eval mode, on its device.
    model: PreTrainedModel
    # Tokenizer with a chat template and left padding.
    tokenizer: PreTrainedTokenizerBase
    # "cpu" or "cuda[:n]".
    device: str
    # "float32", "bfloat16", or "awq-int4".
    precision: str
    # Seconds the load took (cache hit or not).
    load_seconds: float = 0.0

    @property
    def is_awq(self) -> bool:
        return self.precision == "awq-int4"

    def describe(self) -> str:
        params = sum(p.numel() for p in self.model.parameters()) / 1e6
        return f"{self.name} ({self.model_id}, {self.precision}, {self.device}, {params:.3g}M params)"
