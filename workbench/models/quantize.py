"""``workbench quantize``: a float model (preset, hub id or folder) to an AWQ INT4 folder.

Calibration uses the project's own multilingual support text (the store FAQ, the policy
pack, the chat examples and the training dialogs), never the eval items, so eval scores of
the INT4 model are not flattered by calibration on the questions they ask.
"""
from __future__ import annotations

import json
import random
import tempfile
from pathlib import Path

import yaml

from workbench.config import DATA_ROOT
from workbench.errors import InputError
from workbench.domain.langs import LANGUAGES, example_questions
from workbench.domain.policy import faq_file, load_policies, policy_text


def calibration_texts(limit: int = 128, seed: int = 0) -> list[str]:
    """Support text in the 15 languages, shuffled with a fixed seed."""
    texts = [q for lang in LANGUAGES for q in example_questions(lang)]
    texts += [policy_text(region) for region in load_policies()]
    faq = faq_file()
    if faq.exists():
        for entry in (yaml.safe_load(faq.read_text(encoding="utf-8")) or {}).get("entries", []):
            texts.append(f"{entry.get('question', '')}\n{entry.get('answer', '')}")
    for path in sorted((DATA_ROOT / "train").glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                msgs = json.loads(line).get("messages", [])
                texts.append("\n".join(m.get("content", "") for m in msgs if m.get("role") != "system"))
    texts = [t for t in texts if t.strip()]
    random.Random(seed).shuffle(texts)
    return texts[:limit]


def quantize_model(src: str, dst: str | Path, *, group_size: int = 128, device: str = "cpu",
                   calib_samples: int = 128) -> Path:
    """Quantize ``src`` into ``dst`` (a new folder) and return it."""
    from workbench.models.awq import quantize_to_awq
    from workbench.models.catalog import PRESETS, load_model

    dst = Path(dst)
    if dst.exists() and any(dst.iterdir()):
        raise InputError(f"{dst} already exists and is not empty; pick a new folder.")
    texts = calibration_texts(calib_samples)
    if Path(src).is_dir():
        return quantize_to_awq(src, dst, texts, group_size=group_size, device=device)
    # Presets and hub ids: save a float copy first, since gptqmodel reads a folder.
    loaded = load_model(src, device="cpu") if src in PRESETS else load_model(src)
    if loaded.is_awq:
        raise InputError(f"{src} is already an AWQ INT4 model.")
    with tempfile.TemporaryDirectory(prefix="wb-float-") as tmp:
        loaded.model.save_pretrained(tmp)
        loaded.tokenizer.save_pretrained(tmp)
        return quantize_to_awq(tmp, dst, texts, group_size=group_size, device=device)
