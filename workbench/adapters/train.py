"""LoRA supervised fine-tuning on chat dialogs, with peft and a plain torch loop.

Each JSONL line is ``{"messages": [...], "lang": .., "task": ..}``. Dialogs are PII-masked,
rendered with the base tokenizer's own chat template (the one the engine serves with) and
trained with the loss on assistant turns only. The run is deterministic for a seed on CPU,
shows its progress with the loss (a bar on a terminal, whole lines in a log file), writes
checkpoints it can resume from, and ends with a complete version folder (PEFT files +
card.json) moved into place in one rename.

Data that overlaps a suite's test split is refused before anything loads (``leakcheck``:
whole strings or question shapes with other slot values), naming the closest pairs.

INT4 (AWQ) bases are refused: train on the float base and serve the adapter on the INT4
one (pass ``base_model_id`` so the adapter names the base it will be served on).
"""
from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import random
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from peft import LoraConfig, get_peft_model, set_peft_model_state_dict
from safetensors.torch import load_file
from transformers import get_cosine_schedule_with_warmup

from workbench.adapters.registry import CARD_FILE, WEIGHTS_FILE, check_new_version, make_readable
from workbench.adapters.sft_data import (IGNORE, Example, data_summary, encode_dialog,
                                         load_dialogs, make_batches)
from workbench.config import workbench_home
from workbench.errors import AdapterError, InputError
from workbench.models.loaded import LoadedModel
from workbench.console.progress import Progress

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of one run (all of them land in card.json)."""

    # Passes over the data; ignored when max_steps is set.
    epochs: float = 1.0
    # Optimizer steps to run; None: epochs decide.
    max_steps: int | None = None
    # LoRA rank.
    rank: int = 8
    # LoRA alpha; None: 2 x rank.
    alpha: int | None = None
    # Dropout on the LoRA input.
    dropout: float = 0.05
    # Modules to adapt: "all-linear" or a list of module names.
    targets: str | tuple[str, ...] = "all-linear"
    # Adapt only the top N decoder layers (None: all). Backward then stops at the lowest
    # adapted layer, which makes CPU training markedly cheaper.
    top_layers: int | None = None
    # Peak learning rate (cosine decay after warmup).
    lr: float = 5e-4
    # Warmup steps.
    warmup_steps: int = 10
    # Dialogs per optimizer step.
    batch_size: int = 4
    # Seed for data order, LoRA init and dropout.
    seed: int = 0
    # Dialogs longer than this (tokens) are skipped.
    max_len: int = 1024
    # Save a checkpoint every this many steps (0: only at the end).
    save_every: int = 0


@dataclass
class TrainResult:
    """What a finished run produced."""

    # The version folder written.
    out: Path
    # Optimizer steps run (including resumed ones).
    steps: int
    # Wall-clock seconds of this process's training loop.
    seconds: float
    # Mean loss of the first and last 10% of steps.
    loss_first: float
    loss_last: float
    # Loss of every step.
    losses: list[float] = field(default_factory=list)
    # The card written to card.json.
    card: dict = field(default_factory=dict)


def train_adapter(base: LoadedModel | str, data: list[str | Path], out: str | Path,
                  cfg: TrainConfig = TrainConfig(), *, base_model_id: str | None = None,
                  checkpoint_dir: Path | None = None, resume: Path | None = None,
                  progress: bool = True) -> TrainResult:
    """Train a LoRA on ``data`` and write it to ``out`` (refused if ``out`` exists)."""
    out = Path(out)
    check_new_version(out)
    dialogs, files = load_dialogs([Path(p) for p in data])
    refuse_test_overlap([Path(p) for p in data])
    loaded = _load_base(base)
    if loaded.is_awq:
        raise InputError("Training on an INT4 (AWQ) base gives wrong gradients; train on the "
                         "float base and serve the adapter on the INT4 one.")
    examples = [e for e in (encode_dialog(loaded.tokenizer, d, cfg.max_len) for d in dialogs) if e]
    if not examples:
        raise InputError("No usable training dialogs (each needs an assistant turn and must fit "
                         f"in {cfg.max_len} tokens).")
    if len(examples) < len(dialogs):
        log.warning("skipped %d dialogs too long or without an assistant turn",
                    len(dialogs) - len(examples))
    ckpt = checkpoint_dir or workbench_home() / "checkpoints" / f"{out.parent.name}-{out.name}"
    model, losses, seconds, steps = _run(loaded, examples, cfg, ckpt, resume, progress)
    card = _card(loaded, base_model_id, cfg, files, examples, losses, seconds, steps)
    _save(model, out, base_model_id or loaded.model_id, card)
    tenth = max(1, len(losses) // 10)
    return TrainResult(out, steps, seconds, _mean(losses[:tenth]), _mean(losses[-tenth:]),
                       losses, card)


def refuse_test_overlap(paths: list[Path], top: int = 5) -> None:
    """InputError when a training question near-duplicates a test item or reuses its shape."""
    from workbench.adapters.leakcheck import overlap_with_test_split

    found = overlap_with_test_split(paths, top)
    if found:
        raise InputError("Refusing to train: the data overlaps the eval suites' test split "
                         "(reword or drop these questions; the test split must stay unseen).\n"
                         + found)


def _load_base(base: LoadedModel | str) -> LoadedModel:
    if isinstance(base, LoadedModel):
        return base
    from workbench.models.catalog import load_model

    return load_model(base)


def _run(loaded: LoadedModel, examples: list[Example], cfg: TrainConfig, ckpt: Path,
         resume: Path | None, progress: bool):
    torch.manual_seed(cfg.seed)
    random.seed(cfg.seed)
    model = get_peft_model(loaded.model, _lora_config(loaded, cfg))
    steps_per_epoch = math.ceil(len(examples) / cfg.batch_size)
    total = cfg.max_steps or max(1, round(cfg.epochs * steps_per_epoch))
    params = [p for p in model.parameters() if p.requires_grad]
    optim = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=0.0)
    sched = get_cosine_schedule_with_warmup(optim, min(cfg.warmup_steps, total // 5), total)
    start, losses = _resume(model, optim, sched, resume) if resume else (0, [])
    pad_id = loaded.tokenizer.pad_token_id or 0
    batches = _batch_stream(examples, cfg, pad_id)
    for _ in range(start):  # same seed, same order: skip what the checkpoint already saw
        next(batches)
    model.train()
    t0 = time.monotonic()
    # A bar on a terminal; in a log file a line every 10% or 30 s (see workbench.console.progress).
    bar = Progress(total, "train", unit="step", initial=start, enabled=progress)
    for step in range(start + 1, total + 1):
        ids, mask, labels = (t.to(loaded.device) for t in next(batches))
        loss = label_loss(model, ids, mask, labels)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optim.step()
        sched.step()
        optim.zero_grad(set_to_none=True)
        losses.append(float(loss.detach()))
        bar.set_postfix(loss=f"{_mean(losses[-10:]):.3f}", lr=f"{sched.get_last_lr()[0]:.1e}")
        bar.update(1)
        if cfg.save_every and step % cfg.save_every == 0 and step < total:
            _checkpoint(model, optim, sched, losses, ckpt / f"step-{step:06d}")
    bar.close()
    model.eval()
    return model, losses, time.monotonic() - t0, total


def _lora_config(loaded: LoadedModel, cfg: TrainConfig) -> LoraConfig:
    targets = cfg.targets if isinstance(cfg.targets, str) else list(cfg.targets)
    layers = None
    if cfg.top_layers:
        n = int(loaded.model.config.num_hidden_layers)
        layers = list(range(max(0, n - cfg.top_layers), n))
        if targets == "all-linear":  # peft needs names to restrict layers
            targets = sorted({name.rsplit(".", 1)[-1] for name, mod in loaded.model.named_modules()
                              if isinstance(mod, torch.nn.Linear) and ".layers." in name})
    return LoraConfig(r=cfg.rank, lora_alpha=cfg.alpha or 2 * cfg.rank, lora_dropout=cfg.dropout,
                      target_modules=targets, layers_to_transform=layers, task_type="CAUSAL_LM")


def label_loss(model, ids: torch.Tensor, mask: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy on the labelled (assistant) tokens only.

    The vocabulary projection is applied to those positions alone instead of to every prompt
    token: with long grounded prompts and a 49k vocabulary that is a large share of the work.
    """
    base = model.get_base_model()
    hidden = base.get_decoder()(input_ids=ids, attention_mask=mask).last_hidden_state[:, :-1]
    target = labels[:, 1:]
    keep = target != IGNORE
    logits = base.get_output_embeddings()(hidden[keep])
    return torch.nn.functional.cross_entropy(logits.float(), target[keep])


def _batch_stream(examples: list[Example], cfg: TrainConfig, pad_id: int):
    """Endless deterministic batches, epoch after epoch, each epoch reshuffled."""
    epoch = 0
    while True:
        yield from make_batches(examples, cfg.batch_size, pad_id, random.Random(cfg.seed + epoch))
        epoch += 1


def _checkpoint(model, optim, sched, losses: list[float], folder: Path) -> None:
    """Adapter weights + optimizer state; the two newest checkpoints are kept."""
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    torch.save({"optim": optim.state_dict(), "sched": sched.state_dict()}, folder / "state.pt")
    (folder / "progress.json").write_text(json.dumps({"step": len(losses), "losses": losses}))
    for old in sorted(folder.parent.glob("step-*"))[:-2]:
        shutil.rmtree(old, ignore_errors=True)


def _resume(model, optim, sched, folder: Path) -> tuple[int, list[float]]:
    folder = Path(folder)
    if folder.is_dir() and not (folder / "progress.json").exists():
        candidates = sorted(folder.glob("step-*"))  # a checkpoint root: take the newest
        folder = candidates[-1] if candidates else folder
    try:
        progress = json.loads((folder / "progress.json").read_text())
        set_peft_model_state_dict(model, load_file(str(folder / WEIGHTS_FILE)))
        state = torch.load(folder / "state.pt", weights_only=True)
    except (OSError, ValueError, RuntimeError) as exc:
        raise InputError(f"Cannot resume from {folder}: {exc}") from exc
    optim.load_state_dict(state["optim"])
    sched.load_state_dict(state["sched"])
    return int(progress["step"]), list(progress["losses"])


def _card(loaded: LoadedModel, base_model_id: str | None, cfg: TrainConfig, files: list[dict],
          examples: list[Example], losses: list[float], seconds: float, steps: int) -> dict:
    every = max(1, len(losses) // 20)
    curve = [round(_mean(losses[i:i + every]), 4) for i in range(0, len(losses), every)]
    tenth = max(1, len(losses) // 10)
    return {
        "base_model": base_model_id or loaded.model_id,
        "trained_on": loaded.model_id,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "kind": "lora-sft",
        "training_data": {**data_summary(files), "examples_used": len(examples),
                          "tokens": sum(len(e.input_ids) for e in examples), "pii_masked": True},
        "hyper_parameters": dataclasses.asdict(cfg),
        "train": {"steps": steps, "seconds": round(seconds, 1), "device": loaded.device,
                  "loss_first": round(_mean(losses[:tenth]), 4),
                  "loss_last": round(_mean(losses[-tenth:]), 4), "loss_curve": curve},
        "eval": {},
    }


def _save(model, out: Path, base_id: str, card: dict) -> None:
    """Write into a hidden sibling folder, then rename: the version appears complete or not at all."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        model.save_pretrained(tmp)
        cfg_file = tmp / "adapter_config.json"
        cfg = json.loads(cfg_file.read_text())
        cfg["base_model_name_or_path"] = base_id
        cfg["inference_mode"] = True
        cfg_file.write_text(json.dumps(cfg, indent=2))
        (tmp / CARD_FILE).write_text(json.dumps(card, indent=2, ensure_ascii=False), encoding="utf-8")
        for extra in tmp.iterdir():
            if extra.name == "README.md":
                extra.unlink()  # peft's model-card template says nothing card.json does not
        if out.exists():
            raise AdapterError(f"{out} appeared while training; not overwriting it.")
        make_readable(tmp)
        os.rename(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else float("nan")
