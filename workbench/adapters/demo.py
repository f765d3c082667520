"""Random-init LoRA adapters: a demo variant for the chat, and fixtures for tests.

``init_lora_weights=False`` makes both LoRA matrices random, so the adapter really changes
the answers (peft's default init leaves B at zero, which would make it a no-op).
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import torch
from peft import LoraConfig, get_peft_model
from transformers import PreTrainedModel

DEFAULT_TARGETS = ("q_proj", "v_proj")


def make_random_adapter(base: PreTrainedModel, out_dir: str | Path, *, base_model_id: str,
                        seed: int = 0, rank: int = 8, scale: float = 1.0,
                        targets: tuple[str, ...] = DEFAULT_TARGETS) -> Path:
    """Save a random LoRA for ``base`` to ``out_dir`` (PEFT files + card.json); ``base`` is untouched."""
    out = Path(out_dir)
    torch.manual_seed(seed)
    cfg = LoraConfig(r=rank, lora_alpha=rank * 2, target_modules=list(targets),
                     init_lora_weights=False, task_type="CAUSAL_LM")
    peft_model = get_peft_model(base, cfg)
    try:
        with torch.no_grad():
            for name, p in peft_model.named_parameters():
                if "lora_" in name:
                    p.mul_(scale)
        peft_model.save_pretrained(out)
    finally:
        peft_model.unload()  # strip the LoRA layers so the caller's model is as before
    _fix_base_id(out, base_model_id)
    card = {"base_model": base_model_id, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "kind": "random-init demo", "hyper_parameters": {"rank": rank, "seed": seed,
                                                             "targets": list(targets), "scale": scale}}
    (out / "card.json").write_text(json.dumps(card, indent=2))
    return out


def _fix_base_id(out: Path, base_model_id: str) -> None:
    cfg_file = out / "adapter_config.json"
    cfg = json.loads(cfg_file.read_text())
    cfg["base_model_name_or_path"] = base_model_id
    cfg_file.write_text(json.dumps(cfg, indent=2))
