"""Validation refuses adapters the engine's stacked LoRA routing cannot batch, before loading."""
from __future__ import annotations

import json

import pytest

from workbench.adapters.demo import make_random_adapter
from workbench.adapters.validate import validate_adapter
from workbench.errors import AdapterError
from workbench.models.catalog import load_model


@pytest.fixture
def tiny():
    return load_model("tiny-glm")


def test_lora_on_an_embedding_is_refused(tiny, tmp_path) -> None:
    out = make_random_adapter(tiny.model, tmp_path / "emb", base_model_id=tiny.model_id,
                              targets=("embed_tokens", "q_proj"))
    with pytest.raises(AdapterError, match="LoRA on an embedding.*cannot be stacked"):
        validate_adapter(out, tiny)


def test_dora_is_refused_as_unstackable(tiny, tmp_path) -> None:
    out = make_random_adapter(tiny.model, tmp_path / "plain", base_model_id=tiny.model_id)
    assert validate_adapter(out, tiny).rank == 8  # the plain LoRA passes
    cfg = json.loads((out / "adapter_config.json").read_text())
    (out / "adapter_config.json").write_text(json.dumps({**cfg, "use_dora": True}))
    with pytest.raises(AdapterError, match="'use_dora'.*cannot be stacked"):
        validate_adapter(out, tiny)
