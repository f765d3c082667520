"""LoRA adapters on the one copy of the base weights.

The base model is wrapped in a ``PeftModel`` when the first adapter arrives; each further
adapter adds only its LoRA matrices. These functions run on the engine's worker thread,
between batches, so no generate call ever sees an adapter appear or vanish.
"""
from __future__ import annotations

from pathlib import Path

from peft import PeftModel

from workbench.engine.runner import ModelRunner
from workbench.errors import AdapterError


def loaded_adapters(runner: ModelRunner) -> list[str]:
    cfg = getattr(runner.model, "peft_config", None)
    return sorted(cfg) if cfg else []


def _prepare_awq(runner: ModelRunner) -> None:
    """INT4 bases need the mixed-batch shim for peft's AWQ LoRA layers."""
    if runner.loaded.is_awq:
        from workbench.models.awq import enable_awq_mixed_batches

        enable_awq_mixed_batches()


def attach_adapter(runner: ModelRunner, name: str, path: Path) -> None:
    """Load the PEFT adapter at ``path`` under ``name``; on failure nothing changes."""
    if name in loaded_adapters(runner):
        raise AdapterError(f"An adapter named '{name}' is already loaded. Unload it first.")
    _prepare_awq(runner)
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


def clear_stale_adapter_hooks(model: object) -> int:
    """Remove per-row adapter hooks a failed ``generate`` left behind; returns how many.

    peft registers one ``adapter_names`` pre-forward hook per LoRA layer for a mixed batch
    and removes them after the call, but not when the call raises. Left in place they would
    route the next batch's rows to the failed batch's adapters.
    """
    from functools import partial

    from peft.tuners.lora import model as lora_model

    target = lora_model._adapter_names_pre_forward_hook
    removed = 0
    for module in getattr(model, "modules", lambda: [])():
        for key, hook in list(module._forward_pre_hooks.items()):
            if isinstance(hook, partial) and hook.func is target:
                del module._forward_pre_hooks[key]
                module._forward_pre_hooks_with_kwargs.pop(key, None)
                removed += 1
    return removed
