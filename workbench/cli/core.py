"""Core commands: models, chat, bench, quantize, demo-adapter."""
from __future__ import annotations

from pathlib import Path

import click

from workbench.cli.backend_opts import backend_choice, backend_options
from workbench.cli.bench_cmds import bench_cmd
from workbench.cli.precheck import (DEFAULT_MODEL, adapter_refs, before_loading, check_model,
                                    check_refs)


@click.command("models")
def models_cmd() -> None:
    """List the model presets (any hub id or local folder works too).

    Example: workbench models
    """
    before_loading()  # the catalog imports transformers
    from workbench.models.catalog import PRESETS

    for p in PRESETS.values():
        mark = " (default)" if p.name == DEFAULT_MODEL else ""
        click.echo(f"{p.name:<20} {p.summary}{mark}")


@click.command("chat")
@click.argument("message")
@click.option("--model", default=DEFAULT_MODEL, show_default=True, help="Model preset, hub id or folder.")
@click.option("--adapter", "adapters", multiple=True, help="Variant(s) to answer with; 'base' is the base model.")
@click.option("--lang", default="en", show_default=True, help="Customer language code.")
@click.option("--region", default=None, help="Ground on this region's return policy (EU, US, JP...).")
@click.option("--max-new-tokens", default=160, show_default=True, type=click.IntRange(min=1),
              help="Longest answer, in tokens.")
@backend_options
def chat_cmd(message: str, model: str, adapters: tuple[str, ...], lang: str, region: str | None,
             max_new_tokens: int, backend: str, base_url: str | None, api_key: str | None) -> None:
    """Ask one customer question and print each variant's answer, side by side in text.

    Example: workbench chat "Can I return shoes after 20 days?" --region EU --adapter base --adapter cs-support
    (add --backend openai --base-url http://HOST:8000/v1 to ask a remote server's models)
    """
    from workbench.domain.prompts import check_place

    choice = backend_choice(backend, base_url, api_key)
    refs = adapter_refs(adapters)
    check_refs(refs, choice.remote)  # names, region and language before the model loads
    check_place(lang, region)
    before_loading()
    from workbench.service.turns import Face, TurnRequest

    wb = choice.start(model)
    try:
        handles = [wb.serve_turn(TurnRequest.question(v, message, Face.CLI, lang=lang, region=region,
                                                      grounded=bool(region), max_new_tokens=max_new_tokens))
                   for v in (adapters or ("base",))]
        for handle in handles:
            answer = handle.text()
            m = handle.metrics
            click.secho(f"── {wb.variant_label(handle.variant.adapter or 'base')} · "
                        f"{m.total_ms:.0f} ms · batch {m.batch_size}", bold=True)
            click.echo(handle.failure or answer.strip())
    finally:
        wb.close()


@click.command("quantize")
@click.argument("src")
@click.argument("dst", type=click.Path(path_type=Path))
@click.option("--group-size", default=128, show_default=True, type=click.IntRange(min=1),
              help="AWQ group size (divides the hidden size).")
@click.option("--device", default="cpu", show_default=True, help="cpu or cuda.")
@click.option("--calib-samples", default=128, show_default=True, type=click.IntRange(min=1),
              help="Calibration texts to use.")
def quantize_cmd(src: str, dst: Path, group_size: int, device: str, calib_samples: int) -> None:
    """Make an AWQ INT4 checkpoint from a float model, calibrated on the project's support text.

    SRC is a preset, hub id or folder; DST a new folder that plain transformers loads.

    Example: workbench quantize tiny-glm /tmp/tiny-glm-awq --group-size 32
    """
    check_model(src)
    from workbench.models.quantize import quantize_model

    out = quantize_model(src, dst, group_size=group_size, device=device, calib_samples=calib_samples)
    click.echo(f"AWQ INT4 checkpoint written to {out}")


@click.command("demo-adapter")
@click.option("--model", default=DEFAULT_MODEL, show_default=True,
              help="Base model the adapter is made for.")
@click.option("--name", default="demo-random", show_default=True, help="Adapter name in the registry.")
@click.option("--version", default="v1", show_default=True, help="Version label (must be new).")
@click.option("--seed", default=7, show_default=True, help="Seed of the random LoRA weights.")
@click.option("--rank", default=8, show_default=True, type=click.IntRange(min=1), help="LoRA rank.")
@click.option("--scale", default=0.5, show_default=True, help="Multiplier on the random LoRA weights.")
def demo_adapter_cmd(model: str, name: str, version: str, seed: int, rank: int, scale: float) -> None:
    """Save a random-init LoRA adapter under adapters/NAME/VERSION (a visible demo variant).

    Example: workbench demo-adapter --name demo-random --version v1
    """
    from workbench.adapters.registry import Registry, check_safe_name
    from workbench.errors import AdapterError

    out = Registry().root / check_safe_name("name", name) / check_safe_name("version", version)
    if out.exists():
        raise AdapterError(f"{name}@{version} already exists; versions are immutable.")
    before_loading()
    from workbench.adapters.demo import make_random_adapter
    from workbench.models.catalog import load_model

    loaded = load_model(model)
    make_random_adapter(loaded.model, out, base_model_id=loaded.model_id, seed=seed, rank=rank,
                        scale=scale)
    click.echo(f"Saved {name}@{version} to {out}")


COMMANDS = [models_cmd, chat_cmd, bench_cmd, quantize_cmd, demo_adapter_cmd]
