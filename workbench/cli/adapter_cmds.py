"""``workbench adapters list|load|unload|rollback|import`` and ``workbench train``.

With ``--server URL`` (or ``WORKBENCH_SERVER``) load, unload and rollback act on that running
app or ``workbench serve`` through its admin API (token in ``WORKBENCH_ADMIN_TOKEN``).
Without it they run the same lifecycle function on a fresh in-process Workbench, which
validates against ``--model`` and records the served version on disk (``pinned_refs`` hands
it to the next start), and say plainly that no running server was changed.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import click

from workbench.cli.precheck import DEFAULT_MODEL, before_loading, check_refs

MODEL_OPTION = click.option("--model", default=DEFAULT_MODEL, show_default=True,
                            help="Base model to validate and serve against.")
SERVER_OPTION = click.option("--server", envvar="WORKBENCH_SERVER", default=None,
                             help="URL of a running app or `workbench serve` to act on through its "
                                  "admin API (env WORKBENCH_SERVER; token in WORKBENCH_ADMIN_TOKEN).")
OFFLINE_NOTE = ("No --server given: only the registry's record on disk changed (the version the "
                "next start serves); no running server was touched. Pass --server URL or set "
                "WORKBENCH_SERVER to act on a running app.")


def _remote(server: str, route: str, body: dict) -> str:
    """POST to the server's admin API; its refusal becomes a WorkbenchError with its message."""
    import httpx

    from workbench.errors import AuthError, WorkbenchError

    token = os.environ.get("WORKBENCH_ADMIN_TOKEN")
    if not token:
        raise AuthError("--server needs the admin token: set WORKBENCH_ADMIN_TOKEN.")
    base = server.rstrip("/")
    url = (base if base.endswith("/v1") else base + "/v1") + route
    try:
        r = httpx.post(url, json=body, headers={"Authorization": f"Bearer {token}"}, timeout=300)
    except httpx.HTTPError as exc:
        raise WorkbenchError(f"Could not reach {server}: {exc}") from exc
    if r.status_code == 200:
        return r.headers.get("x-workbench-adapter", "")
    try:
        message = r.json()["error"]["message"]
    except (ValueError, KeyError, TypeError):
        message = r.text[:300]
    if r.status_code in (401, 403):
        raise AuthError(f"{server} refused: {message}", r.status_code)
    raise WorkbenchError(f"{server} refused ({r.status_code}): {message}")


@click.group("adapters")
def adapters_group() -> None:
    """List, load, unload, roll back and import LoRA adapters.

    Example: workbench adapters list
    """


@adapters_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per version.")
@click.option("--max-lora-rank", default=16, show_default=True, type=click.IntRange(min=1),
              help="The vLLM server's --max-lora-rank, for the vLLM check.")
def list_cmd(as_json: bool, max_lora_rank: int) -> None:
    """Every registered name@version with base, rank, size, created and eval summary; flags
    versions that `vllm serve --enable-lora` would refuse.

    Example: workbench adapters list --json
    """
    before_loading()  # the listing reads adapter files with torch's safetensors
    from workbench.service.lifecycle import AdapterRow, adapter_rows, pinned_refs
    from workbench.adapters.registry import Registry
    from workbench.adapters.vllm_compat import vllm_problems

    registry = Registry()
    rows = adapter_rows(registry)
    pinned = set(pinned_refs(registry))
    refused = {row.ref: vllm_problems(registry.resolve(row.ref).path, max_lora_rank) for row in rows}
    if as_json:
        for row in rows:
            click.echo(json.dumps({**dict(zip(AdapterRow.HEADERS, row.cells())),
                                   "pinned": row.ref in pinned, "vllm_refuses": refused[row.ref]},
                                  ensure_ascii=False))
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
    for ref, problems in refused.items():
        if problems:
            click.secho(f"vLLM would refuse {ref}: {'; '.join(problems)}", fg="yellow")


def _start(model: str):
    before_loading()
    from workbench.service.workbench import Workbench

    return Workbench.start(model=model, adapters=[])


@adapters_group.command("load")
@click.argument("ref")
@MODEL_OPTION
@SERVER_OPTION
def load_cmd(ref: str, model: str, server: str | None) -> None:
    """Validate REF (name@version, or name for its newest) against the base and serve it.

    Example: workbench adapters load cs-support@v1 --server http://127.0.0.1:7860
    """
    from workbench.adapters.registry import Registry

    version = Registry().resolve(ref)  # an unknown name fails here, before anything loads
    if server:
        served = _remote(server, "/load_lora_adapter",
                         {"lora_name": version.ref, "lora_path": f"{version.name}/{version.version}"})
        click.echo(f"{server} now serves {served or version.ref}.")
        return
    wb = _start(model)
    from workbench.service import lifecycle

    try:
        click.echo(lifecycle.load(wb, ref).message)
        _smoke(wb, ref.partition("@")[0])
    finally:
        wb.close()
    click.echo(OFFLINE_NOTE)


def _smoke(wb, name: str) -> None:
    """One short answer through the service, so a loaded-but-broken adapter shows here."""
    from workbench.service.turns import Face, TurnRequest

    handle = wb.serve_turn(TurnRequest.question(name, "Hello, where is my order?", Face.CLI,
                                                lang="en", max_new_tokens=12))
    text = handle.text()
    click.echo(f"{wb.variant_label(name)} answers: {(handle.failure or text).strip()!r}")


@adapters_group.command("unload")
@click.argument("name")
@click.option("--drain", is_flag=True, help="Wait for its queued requests instead of refusing.")
@MODEL_OPTION
@SERVER_OPTION
def unload_cmd(name: str, drain: bool, model: str, server: str | None) -> None:
    """Stop serving NAME (refused while it has requests, unless --drain; a server drains).

    Example: workbench adapters unload cs-support --server http://127.0.0.1:7860
    """
    if server:
        _remote(server, "/unload_lora_adapter", {"lora_name": name.partition("@")[0]})
        click.echo(f"{server} no longer serves {name.partition('@')[0]}.")
        return
    pinned = _pinned(name)
    wb = _start(model)
    from workbench.service import lifecycle

    try:
        lifecycle.load(wb, pinned)
        click.echo(lifecycle.unload(wb, name, drain=drain).message)
    finally:
        wb.close()
    click.echo("No --server given: this only checked that the adapter loads and unloads here; "
               "the registry on disk is unchanged and no running server was touched. Pass "
               "--server URL or set WORKBENCH_SERVER to unload it from a running app.")


@adapters_group.command("rollback")
@click.argument("name")
@click.option("--to", "to_version", default=None, help="Version to go back to (default: the previous).")
@MODEL_OPTION
@SERVER_OPTION
def rollback_cmd(name: str, to_version: str | None, model: str, server: str | None) -> None:
    """Point NAME back to the version it served before; remembered across restarts.

    Example: workbench adapters rollback cs-support --server http://127.0.0.1:7860
    """
    from workbench.adapters.registry import Registry, parse_ref

    if to_version:
        Registry().resolve(f"{parse_ref(name)[0]}@{to_version}")
    if server:
        body = {"lora_name": name.partition("@")[0], "version": to_version}
        click.echo(f"{server} now serves {_remote(server, '/rollback_lora_adapter', body)}.")
        return
    pinned = _pinned(name)
    wb = _start(model)
    from workbench.service import lifecycle

    try:
        lifecycle.load(wb, pinned)
        click.echo(lifecycle.rollback(wb, name, to_version).message)
        _smoke(wb, name)
    finally:
        wb.close()
    click.echo(OFFLINE_NOTE)


def _pinned(name: str) -> str:
    """The version of NAME served last (newest if never served); files only."""
    from workbench.adapters.lifecycle_history import pinned_refs
    from workbench.adapters.registry import Registry, parse_ref

    registry = Registry()
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
    from workbench.adapters.registry import Registry, check_safe_name
    from workbench.errors import AdapterError

    registry = Registry()
    if name:
        check_safe_name("name", name)
    if version:
        check_safe_name("version", version)
    if name and version and registry.exists(name, version):
        raise AdapterError(f"Adapter {name}@{version} is already registered; versions are "
                           f"immutable. Import it as {name}@{registry.next_version(name)}.")
    before_loading()
    from workbench.adapters.upload import import_adapter
    from workbench.adapters.validate import validate_adapter
    from workbench.models.catalog import load_model

    loaded = load_model(model)
    version_obj = import_adapter(registry, source, lambda folder: validate_adapter(folder, loaded),
                                 name=name, version=version)
    click.echo(f"Registered {version_obj.ref} at {version_obj.path} (validated against {loaded.model_id}).")


@click.command("train")
@click.option("--base", default=DEFAULT_MODEL, show_default=True, help="Float base model to train on.")
@click.option("--data", "data", multiple=True, required=True, type=click.Path(exists=True, path_type=Path),
              help="JSONL of {\"messages\": [...]} dialogs; repeat for several files.")
@click.option("--out", required=True, type=click.Path(path_type=Path), help="adapters/NAME/VERSION (must not exist).")
@click.option("--epochs", default=1.0, show_default=True, type=click.FloatRange(min=0, min_open=True),
              help="Passes over the data (unless --max-steps is given).")
@click.option("--max-steps", default=None, type=click.IntRange(min=1),
              help="Stop after this many steps (overrides --epochs).")
@click.option("--rank", default=8, show_default=True, type=click.IntRange(min=1), help="LoRA rank.")
@click.option("--lr", default=5e-4, show_default=True, type=click.FloatRange(min=0, min_open=True),
              help="Peak learning rate.")
@click.option("--batch-size", default=4, show_default=True, type=click.IntRange(min=1),
              help="Dialogs (or preference rows) per step.")
@click.option("--seed", default=0, show_default=True, help="Seed of data order and initialisation.")
@click.option("--top-layers", default=None, type=click.IntRange(min=1),
              help="Adapt only the top N layers (faster on CPU).")
@click.option("--max-len", default=1024, show_default=True, type=click.IntRange(min=1),
              help="Skip dialogs longer than this (tokens).")
@click.option("--save-every", default=50, show_default=True, type=click.IntRange(min=0),
              help="Checkpoint every N steps (0: never).")
@click.option("--resume", default=None, type=click.Path(exists=True, path_type=Path),
              help="Checkpoint folder (or checkpoint root) to continue from.")
@click.option("--serve-base", default=None, help="Base id to record, when serving on another build "
              "of the same model (e.g. its AWQ INT4 folder).")
@click.option("--method", type=click.Choice(["sft", "kto", "dpo"]), default="sft", show_default=True,
              help="sft: dialogs; kto/dpo: a `workbench feedback export` folder as --data.")
@click.option("--from", "from_ref", default=None, metavar="NAME@VERSION",
              help="Adapter version to continue from (required for kto and dpo).")
@click.option("--beta", default=0.1, show_default=True, type=float,
              help="kto/dpo: how strongly the new version is held to the --from one.")
def train_cmd(base: str, data: tuple[Path, ...], out: Path, epochs: float, max_steps: int | None,
              rank: int, lr: float, batch_size: int, seed: int, top_layers: int | None, max_len: int,
              save_every: int, resume: Path | None, serve_base: str | None, method: str,
              from_ref: str | None, beta: float) -> None:
    """LoRA fine-tune on chat dialogs (loss on assistant turns, PII masked) into a new version,
    or continue a version on rated answers with KTO or DPO (--method, --from).

    Example: workbench train --base smollm2-135m --data workbench/data/train/intents.jsonl --data workbench/data/train/policy.jsonl --data workbench/data/train/support.jsonl --out adapters/cs-support/v1 --max-steps 200 --top-layers 10 --lr 1e-3

    Example: workbench train --method kto --data data/feedback/2026-12 --from cs-support@v2 --out adapters/cs-support/v3 --max-steps 60 --lr 5e-5
    """
    if method != "sft" and (not from_ref or len(data) != 1):
        raise click.UsageError("--method kto/dpo needs --from NAME@VERSION and one --data folder.")
    if method == "sft" and from_ref:
        raise click.UsageError("--from is for --method kto or dpo; sft trains a new adapter.")
    from workbench.adapters.registry import check_new_version

    check_new_version(out)
    check_refs([from_ref] if from_ref else [])
    before_loading()
    if method != "sft":
        from workbench.adapters.train_pref import PrefConfig, train_preference

        pref = PrefConfig(method=method, max_steps=max_steps, epochs=epochs, lr=lr, beta=beta,
                          batch_size=batch_size, seed=seed, max_len=max_len)
        result = train_preference(base, data[0], from_ref, out, pref)
        click.echo(f"Wrote {result.out} from {from_ref}: {result.steps} {method} steps in "
                   f"{result.seconds:.0f} s, loss {result.loss_first:.3f} -> {result.loss_last:.3f}.")
        return

    from workbench.adapters.train import TrainConfig, train_adapter

    cfg = TrainConfig(epochs=epochs, max_steps=max_steps, rank=rank, lr=lr, batch_size=batch_size,
                      seed=seed, top_layers=top_layers, max_len=max_len, save_every=save_every)
    result = train_adapter(base, list(data), out, cfg, base_model_id=serve_base, resume=resume)
    click.echo(f"Wrote {result.out}: {result.steps} steps in {result.seconds:.0f} s, "
               f"loss {result.loss_first:.3f} -> {result.loss_last:.3f}.")


COMMANDS = [adapters_group, train_cmd]
