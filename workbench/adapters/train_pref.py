"""Preference training (KTO or DPO, with TRL) that continues from an existing adapter version.

The data is a ``workbench feedback export`` folder: ``kto.jsonl`` (prompt, completion, label)
or ``dpo.jsonl`` (prompt, chosen, rejected), conversational, rendered by TRL with the base
tokenizer's chat template. The starting version's LoRA weights are loaded trainable; TRL keeps
a frozen copy of them as the reference policy, so the new version moves away from the one it
started from only as far as the preferences pull it (``beta``). The result is a new immutable
version folder (PEFT files + card.json naming its parent and the data's sha256), written by
the same atomic rename as supervised training.
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from workbench.adapters.registry import Registry
from workbench.adapters.registry import check_new_version
from workbench.adapters.train import TrainResult, _load_base, _mean, _save
from workbench.errors import AdapterError, InputError
from workbench.models.loaded import LoadedModel
from workbench.console.progress import Progress, is_terminal

log = logging.getLogger(__name__)
METHODS = {"kto": "kto.jsonl", "dpo": "dpo.jsonl"}


@dataclass(frozen=True)
class PrefConfig:
    """Hyper-parameters of one preference run (all of them land in card.json)."""

    # "kto" or "dpo".
    method: str = "kto"
    # Optimizer steps; None: epochs decide.
    max_steps: int | None = None
    # Passes over the data when max_steps is None.
    epochs: float = 1.0
    # Peak learning rate (linear decay).
    lr: float = 5e-5
    # Strength of the pull towards the starting adapter (TRL's beta).
    beta: float = 0.1
    # Examples (KTO) or pairs (DPO) per optimizer step.
    batch_size: int = 4
    # Seed of data order and dropout.
    seed: int = 0
    # Prompt + answer tokens kept per example.
    max_len: int = 1024


def load_rows(data: Path, method: str) -> tuple[list[dict], dict]:
    """The method's rows (without ``meta``) and the data block for the card."""
    if method not in METHODS:
        raise InputError(f"Unknown training method '{method}'; use kto or dpo.")
    path = Path(data) / METHODS[method] if Path(data).is_dir() else Path(data)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InputError(f"Cannot read {path} ({exc.strerror}); export it with "
                         "`workbench feedback export --out DIR`.") from exc
    keys = ("prompt", "completion", "label") if method == "kto" else ("prompt", "chosen", "rejected")
    rows = []
    for n, line in enumerate(raw.decode("utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
            rows.append({k: obj[k] for k in keys})
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise InputError(f"{path.name} line {n}: needs {', '.join(keys)} ({exc}).") from exc
    if not rows:
        raise InputError(f"{path} has no examples to train on.")
    if method == "kto" and len({r["label"] for r in rows}) < 2:
        log.warning("%s holds only %s examples; KTO learns best from both kinds", path.name,
                    "good" if rows[0]["label"] else "bad")
    report = Path(path.parent / "report.json")
    summary = {"path": str(path), "sha256": hashlib.sha256(raw).hexdigest(), "bytes": len(raw),
               "rows": len(rows), "pii_masked": True}
    if method == "kto":
        summary["good"] = sum(bool(r["label"]) for r in rows)
    if report.is_file():
        summary["export"] = json.loads(report.read_text(encoding="utf-8"))
    return rows, summary


def train_preference(base: LoadedModel | str, data: Path, start: str, out: str | Path,
                     cfg: PrefConfig = PrefConfig(), *, registry: Registry | None = None,
                     progress: bool = True) -> TrainResult:
    """Train ``start`` (name@version) further on preferences in ``data`` into ``out``."""
    out = Path(out)
    check_new_version(out)
    rows, data_block = load_rows(Path(data), cfg.method)
    parent = (registry or Registry()).resolve(start)
    loaded = _load_base(base)
    if loaded.is_awq:
        raise InputError("Preference training on an INT4 (AWQ) base is not supported; train on the "
                         "float base and serve the adapter on the INT4 one.")
    if parent.base_model not in (loaded.model_id, loaded.name):
        raise AdapterError(f"{parent.ref} was trained for {parent.base_model}, not "
                           f"{loaded.model_id}; pick the matching --base.")
    model, losses, seconds, steps = _run(loaded, parent.path, rows, cfg, progress)
    card = _card(loaded, parent, cfg, data_block, losses, seconds, steps)
    _save(model, out, parent.base_model, card)
    tenth = max(1, len(losses) // 10)
    return TrainResult(out, steps, seconds, _mean(losses[:tenth]), _mean(losses[-tenth:]),
                       losses, card)


def _trainer_args(cfg: PrefConfig, loaded: LoadedModel, tmp: str):
    from trl import DPOConfig, KTOConfig

    common = dict(output_dir=tmp, per_device_train_batch_size=cfg.batch_size,
                  learning_rate=cfg.lr, beta=cfg.beta, seed=cfg.seed, max_length=cfg.max_len,
                  num_train_epochs=cfg.epochs, max_steps=cfg.max_steps or -1, logging_steps=1,
                  save_strategy="no", report_to="none", gradient_checkpointing=False,
                  use_cpu=loaded.device == "cpu", bf16=False, fp16=False,
                  dataloader_num_workers=0, disable_tqdm=True)
    return KTOConfig(**common) if cfg.method == "kto" else DPOConfig(**common)


def _progress_callback(desc: str, enabled: bool):
    """Trainer progress through :class:`workbench.console.progress.Progress` (a bar on a terminal,
    lines in a log) in place of transformers' tqdm bar or its printed log dicts."""
    from transformers import TrainerCallback

    class LineProgress(TrainerCallback):
        bar: Progress | None = None

        def on_train_begin(self, args, state, control, **kwargs):
            self.bar = Progress(state.max_steps or None, desc, unit="step", enabled=enabled)

        def on_log(self, args, state, control, logs=None, **kwargs):
            if self.bar is not None and logs and "loss" in logs:
                self.bar.set_postfix(loss=f"{float(logs['loss']):.3f}")

        def on_step_end(self, args, state, control, **kwargs):
            if self.bar is not None:
                self.bar.update_to(state.global_step)

        def on_train_end(self, args, state, control, **kwargs):
            if self.bar is not None:
                self.bar.close()

    return LineProgress()


@contextlib.contextmanager
def _dataset_bars_off(off: bool):
    """TRL tokenizes the data with ``datasets.map``, whose bars redraw with carriage returns
    too: off for a log file (or a quiet run), as they were afterwards."""
    import datasets

    restore = off and not datasets.are_progress_bars_disabled()
    if off:
        datasets.disable_progress_bars()
    try:
        yield
    finally:
        if restore:
            datasets.enable_progress_bars()


def _run(loaded: LoadedModel, parent_path: Path, rows: list[dict], cfg: PrefConfig,
         progress: bool):
    from datasets import Dataset
    from peft import PeftModel
    from transformers.trainer_callback import PrinterCallback
    from trl import DPOTrainer, KTOTrainer

    torch.manual_seed(cfg.seed)
    model = PeftModel.from_pretrained(loaded.model, str(parent_path), is_trainable=True)
    trainer_cls = KTOTrainer if cfg.method == "kto" else DPOTrainer
    with tempfile.TemporaryDirectory(prefix="workbench-pref-") as tmp, \
            _dataset_bars_off(not (progress and is_terminal(sys.stderr))):
        trainer = trainer_cls(model=model, args=_trainer_args(cfg, loaded, tmp),
                              train_dataset=Dataset.from_list(rows),
                              processing_class=loaded.tokenizer)
        # With disable_tqdm the Trainer prints every log dict to stdout; ours replaces it.
        trainer.remove_callback(PrinterCallback)
        trainer.add_callback(_progress_callback(f"train ({cfg.method})", progress))
        t0 = time.monotonic()
        trainer.train()
        seconds = time.monotonic() - t0
    if trainer.state.global_step == 0:
        raise InputError(f"No example fits in {cfg.max_len} tokens (prompt included); raise "
                         "--max-len.")
    losses = [float(e["loss"]) for e in trainer.state.log_history if "loss" in e]
    model = trainer.model
    if "ref" in model.peft_config:  # TRL's frozen reference copy is not part of the version
        model.delete_adapter("ref")
    model.eval()
    return model, losses, seconds, int(trainer.state.global_step)


def _card(loaded: LoadedModel, parent, cfg: PrefConfig, data_block: dict, losses: list[float],
          seconds: float, steps: int) -> dict:
    import trl

    tenth = max(1, len(losses) // 10)
    return {
        "base_model": parent.base_model,
        "trained_on": loaded.model_id,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "kind": f"lora-{cfg.method}",
        "parent": parent.ref,
        "training_data": data_block,
        "hyper_parameters": dataclasses.asdict(cfg) | {"rank": parent.rank, "trl": trl.__version__},
        "train": {"steps": steps, "seconds": round(seconds, 1), "device": loaded.device,
                  "loss_first": round(_mean(losses[:tenth]), 4),
                  "loss_last": round(_mean(losses[-tenth:]), 4),
                  "loss_curve": [round(x, 4) for x in losses[:: max(1, len(losses) // 20)]]},
        "eval": {},
    }
