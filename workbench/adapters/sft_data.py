"""Training dialogs -> token ids with an assistant-only label mask, and padded batches.

The mask comes from the tokenizer's own chat template: for every assistant turn, the text
rendered up to the generation prompt is context, the text the turn adds is target. Character
offsets map that split onto tokens, so it holds for any template (SmolLM's ChatML, GLM's
role tags) without per-model rules.
"""
from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import PreTrainedTokenizerBase

from workbench.errors import InputError
from workbench.domain.pii import mask_pii

IGNORE = -100  # label value the loss skips


@dataclass(frozen=True)
class Example:
    """One tokenized dialog."""

    # Token ids of the whole rendered dialog.
    input_ids: list[int]
    # Same length; IGNORE except on assistant tokens.
    labels: list[int]


def load_dialogs(paths: list[Path]) -> tuple[list[list[dict[str, str]]], list[dict]]:
    """PII-masked message lists from JSONL files, and per-file sha256/size/count."""
    dialogs: list[list[dict[str, str]]] = []
    files: list[dict] = []
    for path in paths:
        if not path.is_file():
            raise InputError(f"Training data file {path} does not exist.")
        raw = path.read_bytes()
        count = 0
        for lineno, line in enumerate(raw.decode("utf-8").splitlines(), 1):
            if not line.strip():
                continue
            dialogs.append(_parse(line, path, lineno))
            count += 1
        files.append({"path": path.name, "sha256": hashlib.sha256(raw).hexdigest(),
                      "bytes": len(raw), "dialogs": count})
    if not dialogs:
        raise InputError("The training data holds no dialogs.")
    return dialogs, files


def _parse(line: str, path: Path, lineno: int) -> list[dict[str, str]]:
    try:
        row = json.loads(line)
        messages = row["messages"]
        if not isinstance(messages, list):
            raise TypeError("messages must be a list")
        # Mask before anything else sees the text: the adapter must never memorize PII.
        return [{"role": str(m["role"]), "content": mask_pii(str(m["content"]))} for m in messages]
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{path.name} line {lineno}: expected {{\"messages\": [{{\"role\", "
                         f"\"content\"}}, ...]}} ({exc}).") from exc


def data_summary(files: list[dict]) -> dict:
    """Card block: one sha256 over all files (in order), total size, per-file details."""
    digest = hashlib.sha256("".join(f["sha256"] for f in files).encode()).hexdigest()
    return {"sha256": digest, "bytes": sum(f["bytes"] for f in files),
            "dialogs": sum(f["dialogs"] for f in files), "files": files}


def _render(tok: PreTrainedTokenizerBase, messages: list[dict], gen_prompt: bool) -> str:
    return tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=gen_prompt)


def target_spans(tok: PreTrainedTokenizerBase, messages: list[dict]) -> tuple[str, list[tuple[int, int]]]:
    """The rendered dialog and the character spans of its assistant turns."""
    text = _render(tok, messages, False)
    spans = []
    for i, m in enumerate(messages):
        if m["role"] != "assistant":
            continue
        before = _render(tok, messages[:i], True)
        upto = _render(tok, messages[: i + 1], False)
        if not (text.startswith(upto) and upto.startswith(before)):
            raise InputError("The tokenizer's chat template does not render dialogs "
                             "incrementally; cannot find the assistant turns to train on.")
        spans.append((len(before), len(upto)))
    eos = tok.eos_token or ""
    if spans and eos and eos not in text[spans[-1][0]:spans[-1][1]] and spans[-1][1] == len(text):
        # Templates without an end-of-turn tag: teach the model to stop after its answer.
        text += eos
        spans[-1] = (spans[-1][0], len(text))
    return text, spans


def encode_dialog(tok: PreTrainedTokenizerBase, messages: list[dict], max_len: int) -> Example | None:
    """Token ids and assistant-only labels; None when it has no target or is too long."""
    if not any(m["role"] == "assistant" for m in messages):
        return None
    text, spans = target_spans(tok, messages)
    enc = tok(text, add_special_tokens=False, return_offsets_mapping=True)
    ids = list(enc["input_ids"])
    if len(ids) > max_len:
        return None
    labels = [tid if any(s <= start < e for s, e in spans) else IGNORE
              for tid, (start, _end) in zip(ids, enc["offset_mapping"])]
    if all(lab == IGNORE for lab in labels):
        return None
    return Example(ids, labels)


def make_batches(examples: list[Example], batch_size: int, pad_id: int, rng: random.Random):
    """One epoch of right-padded batches (ids, attention mask, labels).

    Shuffled, then sorted by length inside windows of 16 batches so that a batch holds
    dialogs of similar length (less padding, same randomness in what comes when).
    """
    order = list(range(len(examples)))
    rng.shuffle(order)
    window = batch_size * 16
    batches = []
    for w in range(0, len(order), window):
        chunk = sorted(order[w:w + window], key=lambda i: len(examples[i].input_ids))
        batches += [chunk[b:b + batch_size] for b in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    for idx in batches:
        yield collate([examples[i] for i in idx], pad_id)


def collate(batch: list[Example], pad_id: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    width = max(len(e.input_ids) for e in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    labels = torch.full((len(batch), width), IGNORE, dtype=torch.long)
    for row, e in enumerate(batch):
        n = len(e.input_ids)
        ids[row, :n] = torch.tensor(e.input_ids)
        mask[row, :n] = 1
        labels[row, :n] = torch.tensor(e.labels)
    return ids, mask, labels
