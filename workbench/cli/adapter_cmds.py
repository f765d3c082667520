"""``workbench adapters list|load|unload|rollback|import`` and ``workbench train``.

The adapter commands mirror the Adapters tab: each runs the same lifecycle function on a
fresh in-process Workbench (``list`` needs no model). Load and rollback validate against
``--model`` and record the served version, which ``pinned_refs`` hands to the next start.
"""
from __future__ import annotations

import json
from pathlib import Path

import click

from workbench.models.catalog import DEFAULT_MODEL

MODEL_OPTION = click.option("--model", default=DEFAULT_MODEL, show_default=True,
                            help="Base model to validate and serve against.")


@click.group("adapters")
def adapters_group() -> None:
    """List, load, unload, roll back and import LoRA adapters.

    Example: workbench adapters list
    """


@adapters_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per version.")
def list_cmd(as_json: bool) -> None:
    """Every registered name@version with base, rank, size, created and eval summary.

    Example: workbench adapters list --json
    """
    from workbench.adapters.lifecycle import AdapterRow, adapter_rows, pinned_refs
    from workbench.adapters.registry import Registry

    registry = Registry()
    rows = adapter_rows(registry)
    pinned = set(pinned_refs(registry))
    if as_json:
        for row in rows:
            click.echo(json.dumps({**dict(zip(AdapterRow.HEADERS, row.cells())),
                                   "pinned": row.ref in pinned}, ensure_ascii=False))
        return
    if not rows:
        click.echo(f"No adapters in {registry.root}. Train one with `workbench train` or "
                   "import a zip with `workbench adapters import`.")
        return
    widths = [max(len(h), *(len(r.cells()[i]) for r in rows)) for i, h in enumerate(AdapterRow.HEADERS[:-1])]
    click.echo("  ".join(h.ljust(w) for h, w in zip(AdapterRow.HEADERS, widths)) + "  pinned")
    for row in rows:
        cells = row.cells()[:-1]
        click.echo("  ".join(c.ljust(w) for c, w in zip(cells, widths))
                   + ("  *" if row.ref in pinned else ""))


def _start(model: str):
    from workbench.service import Workbench

    return Workbench.start(model=model, adapters=[])


@adapters_group.command("load")
@click.argument("ref")
@MODEL_OPTION
def load_cmd(ref: str, model: str) -> None:
    """Validate REF (name@version, or name for its newest) against the base and serve it.

    Example: workbench adapters load cs-support@v1 --model smollm2-135m
    """
    from workbench.adapters import lifecycle

    wb = _start(model)
    try:
        click.echo(lifecycle.load(wb, ref).message)
        _smoke(wb, ref.partition("@")[0])
    finally:
        wb.close()


def _smoke(wb, name: str) -> None:
    """One short answer through the engine, so a loaded-but-broken adapter shows here."""
    done = wb.engine.generate([{"role": "user", "content": "Hello, where is my order?"}],
                              adapter=name, max_new_tokens=12)
    click.echo(f"{wb.variant_label(name)} answers: {(done.error or done.text).strip()!r}")


@adapters_group.command("unload")
@click.argument("name")
@click.option("--drain", is_flag=True, help="Wait for its queued requests instead of refusing.")
@MODEL_OPTION
def unload_cmd(name: str, drain: bool, model: str) -> None:
    """Stop serving NAME (refused while it has requests, unless --drain).

    Example: workbench adapters unload cs-support --drain
    """
    from workbench.adapters import lifecycle

    wb = _start(model)
    try:
        lifecycle.load(wb, _pinned(wb.registry, name))
        click.echo(lifecycle.unload(wb, name, drain=drain).message)
    finally:
        wb.close()


@adapters_group.command("rollback")
@click.argument("name")
@click.option("--to", "to_version", default=None, help="Version to go back to (default: the previous).")
@MODEL_OPTION
def rollback_cmd(name: str, to_version: str | None, model: str) -> None:
    """Point NAME back to the version it served before (validated against --model).

    Example: workbench adapters rollback cs-support
    """
    from workbench.adapters import lifecycle

    wb = _start(model)
    try:
        lifecycle.load(wb, _pinned(wb.registry, name))
        click.echo(lifecycle.rollback(wb, name, to_version).message)
        _smoke(wb, name)
    finally:
        wb.close()


def _pinned(registry, name: str) -> str:
    """The version of NAME served last (newest if never served)."""
    from workbench.adapters.lifecycle import pinned_refs
    from workbench.adapters.registry import parse_ref

    name, _ = parse_ref(name)
    registry.resolve(name)  # unknown name: clear error with suggestions
    return next(r for r in pinned_refs(registry) if r.partition("@")[0] == name)


@adapters_group.command("import")
@click.argument("source", type=click.Path(exists=True, path_type=Path))
@click.option("--name", default=None, help="Adapter name (default: from card.json or the zip's folders).")
@click.option("--version", "version", default=None, help="Version label (default: the next vN).")
@MODEL_OPTION
def import_cmd(source: Path, name: str | None, version: str | None, model: str) -> None:
    """Register a zipped adapter folder (or a folder) after checking and validating it.

    Example: workbench adapters import cs-support-v2.zip --name cs-support
    """
    from workbench.adapters.registry import Registry
    from workbench.adapters.upload import import_adapter
    from workbench.models.catalog import load_model

    loaded = load_model(model)
    version_obj = import_adapter(Registry(), source, loaded, name=name, version=version)
    click.echo(f"Registered {version_obj.ref} at {version_obj.path} (validated against {loaded.model_id}).")


@click.command("train")
@click.option("--base", default=DEFAULT_MODEL, show_default=True, help="Float base model to train on.")
@click.option("--data", "data", multiple=True, required=True, type=click.Path(exists=True, path_type=Path),
              help="JSONL of {\"messages\": [...]} dialogs; repeat for several files.")
@click.option("--out", required=True, type=click.Path(path_type=Path), help="adapters/NAME/VERSION (must not exist).")
@click.option("--epochs", default=1.0, show_default=True, type=float)
@click.option("--max-steps", default=None, type=int, help="Stop after this many steps (overrides --epochs).")
@click.option("--rank", default=8, show_default=True)
@click.option("--lr", default=5e-4, show_default=True, type=float)
@click.option("--batch-size", default=4, show_default=True)
@click.option("--seed", default=0, show_default=True)
@click.option("--top-layers", default=None, type=int, help="Adapt only the top N layers (faster on CPU).")
@click.option("--max-len", default=1024, show_default=True, help="Skip dialogs longer than this (tokens).")
@click.option("--save-every", default=50, show_default=True, help="Checkpoint every N steps (0: never).")
@click.option("--resume", default=None, type=click.Path(exists=True, path_type=Path),
              help="Checkpoint folder (or checkpoint root) to continue from.")
@click.option("--serve-base", default=None, help="Base id to record, when serving on another build "
              "of the same model (e.g. its AWQ INT4 folder).")
def train_cmd(base: str, data: tuple[Path, ...], out: Path, epochs: float, max_steps: int | None,
              rank: int, lr: float, batch_size: int, seed: int, top_layers: int | None, max_len: int,
              save_every: int, resume: Path | None, serve_base: str | None) -> None:
    """LoRA fine-tune on chat dialogs (loss on assistant turns, PII masked) into a new version.

    Example: workbench train --base smollm2-135m --data data/train/intents.jsonl --data data/train/policy.jsonl --data data/train/support.jsonl --out adapters/cs-support/v1 --max-steps 200 --top-layers 10 --lr 1e-3
    """
    from workbench.adapters.train import TrainConfig, train_adapter

    cfg = TrainConfig(epochs=epochs, max_steps=max_steps, rank=rank, lr=lr, batch_size=batch_size,
                      seed=seed, top_layers=top_layers, max_len=max_len, save_every=save_every)
    result = train_adapter(base, list(data), out, cfg, base_model_id=serve_base, resume=resume)
    click.echo(f"Wrote {result.out}: {result.steps} steps in {result.seconds:.0f} s, "
               f"loss {result.loss_first:.3f} -> {result.loss_last:.3f}.")


COMMANDS = [adapters_group, train_cmd]
