"""LoRA adapters on the one copy of the base weights.

PEFT loads the adapter files: the base model is wrapped in a ``PeftModel`` when the first
adapter arrives, and each further adapter adds only its LoRA matrices. Serving never goes
through PEFT's forward: the runner stacks every adapter's matrices per layer and routes rows
itself (``stacked_lora.py``), so an adapter that cannot be stacked is refused here. These
functions run on the engine's worker thread, between batches, so no step ever sees an
adapter appear or vanish.
"""
from __future__ import annotations

from pathlib import Path

from peft import PeftModel

from workbench.engine.runner import ModelRunner
from workbench.errors import AdapterError


def loaded_adapters(runner: ModelRunner) -> list[str]:
    cfg = getattr(runner.model, "peft_config", None)
    return sorted(cfg) if cfg else []


def attach_adapter(runner: ModelRunner, name: str, path: Path) -> None:
    """Load the PEFT adapter at ``path`` under ``name``; on failure nothing changes."""
    if name in loaded_adapters(runner):
        raise AdapterError(f"An adapter named '{name}' is already loaded. Unload it first.")
    try:
        if isinstance(runner.model, PeftModel):
            runner.model.load_adapter(str(path), adapter_name=name, is_trainable=False)
        else:
            runner.model = PeftModel.from_pretrained(runner.model, str(path), adapter_name=name,
                                                     is_trainable=False)
    except Exception as exc:  # peft raises many types; leave the model as it was
        _discard_partial(runner, name)
        raise AdapterError(f"Could not load adapter '{name}' from {path}: {exc}") from exc
    runner.model.eval()
    runner.adapters_changed()  # cached keys/values were computed under the old adapter set
    why = runner.restack()  # the stacks the next step uses, built once here
    if why:
        detach_adapter(runner, name)
        raise AdapterError(f"Adapter '{name}' cannot be served: {why}. The engine batches plain "
                           "LoRA matrices only (as vLLM does); retrain it as a plain LoRA.")


def _discard_partial(runner: ModelRunner, name: str) -> None:
    if isinstance(runner.model, PeftModel) and name in runner.model.peft_config:
        detach_adapter(runner, name)


def detach_adapter(runner: ModelRunner, name: str) -> None:
    """Remove ``name``'s LoRA matrices; the base weights stay untouched."""
    model = runner.model
    if not isinstance(model, PeftModel) or name not in model.peft_config:
        raise AdapterError(f"Adapter '{name}' is not loaded.")
    runner.adapters_changed()
    if len(model.peft_config) == 1:
        # Removing the last adapter: strip the LoRA layers and serve the plain base again.
        runner.model = model.unload()
        return
    if model.active_adapter == name:
        other = next(n for n in model.peft_config if n != name)
        model.set_adapter(other)
    model.delete_adapter(name)


def replace_adapter(runner: ModelRunner, name: str, new_path: Path, old_path: Path) -> None:
    """Serve ``new_path`` under ``name`` in place of ``old_path``, in one step between batches.

    Run on the worker thread, so no batch sees the name missing or half-loaded: a batch
    before this call uses the old weights throughout, every later one the new. If the new
    weights fail to load, the old version is attached again and the error is raised, so the
    engine serves exactly what it served before.
    """
    if name not in loaded_adapters(runner):
        raise AdapterError(f"Adapter '{name}' is not loaded; load it instead of swapping.")
    detach_adapter(runner, name)
    try:
        attach_adapter(runner, name, Path(new_path))
    except AdapterError:
        attach_adapter(runner, name, Path(old_path))
        raise
