"""Would vLLM (``--enable-lora``) serve this adapter? The refusals vLLM's LoRA loader makes,
checked on the folder before anyone deploys it.

vLLM's ``PEFTHelper.validate_legal`` refuses a rank above ``--max-lora-rank`` (default 16;
the flag takes 1, 8, 16, 32, 64, 128, 256, 320 or 512), DoRA, ``modules_to_save`` and a
LoRA bias; its model loader refuses weights for modules outside the model's LoRA-capable
linear layers. For GLM-4 (and the Llama-shaped models such as SmolLM2) those are the
attention projections ``q_proj k_proj v_proj o_proj`` (vLLM packs q/k/v as ``qkv_proj``) and
the MLP's ``gate_up_proj``/``gate_proj``/``up_proj`` and ``down_proj``; embeddings,
``lm_head`` and norms are not.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

from safetensors import safe_open

# vLLM's default --max-lora-rank.
DEFAULT_MAX_LORA_RANK = 16
# Leaf module names vLLM can put a LoRA on for GLM / GLM-4 and Llama-shaped models.
VLLM_TARGETS = frozenset({"q_proj", "k_proj", "v_proj", "o_proj", "qkv_proj", "gate_up_proj",
                          "gate_proj", "up_proj", "down_proj"})
_MODULE = re.compile(r"\.([A-Za-z0-9_]+)\.lora_(?:A|B|embedding_A|embedding_B)\b")


def weight_modules(folder: Path) -> set[str]:
    """Leaf names of the modules the adapter's tensors are for (reads the header only)."""
    path = folder / "adapter_model.safetensors"
    if not path.exists():
        return set()
    with safe_open(str(path), "pt") as f:
        return {m.group(1) for k in f.keys() if (m := _MODULE.search(k))}


def vllm_problems(folder: Path, max_lora_rank: int = DEFAULT_MAX_LORA_RANK) -> list[str]:
    """Why vLLM would refuse the adapter in ``folder``; empty when it would serve it."""
    try:
        cfg = json.loads((folder / "adapter_config.json").read_text())
    except (OSError, json.JSONDecodeError) as exc:
        return [f"adapter_config.json unreadable ({exc})"]
    problems = []
    if str(cfg.get("peft_type", "LORA")).upper() != "LORA":
        problems.append(f"peft_type {cfg.get('peft_type')} (vLLM serves LoRA only)")
    r = cfg.get("r")
    ranks = [r, *(cfg.get("rank_pattern") or {}).values()]
    top = max((x for x in ranks if isinstance(x, int)), default=None)
    if top is None:
        problems.append("no integer rank r")
    elif top > max_lora_rank:
        problems.append(f"rank {top} > --max-lora-rank {max_lora_rank}")
    if cfg.get("use_dora"):
        problems.append("DoRA (vLLM does not support it)")
    if cfg.get("modules_to_save"):
        problems.append(f"modules_to_save {cfg['modules_to_save']} (vLLM needs none)")
    if cfg.get("bias", "none") != "none" or cfg.get("lora_bias"):
        problems.append("LoRA bias (vLLM refuses adapter biases)")
    for key in ("trainable_token_indices", "target_parameters", "layer_replication"):
        if cfg.get(key):
            problems.append(f"{key} is set (vLLM does not load it)")
    modules = weight_modules(folder)
    if not modules and isinstance(cfg.get("target_modules"), list):
        modules = {str(m).rsplit(".", 1)[-1] for m in cfg["target_modules"]}
    odd = sorted(modules - VLLM_TARGETS)
    if odd:
        problems.append(f"target modules vLLM cannot serve: {', '.join(odd)}")
    return problems
