"""`workbench serve`: the OpenAI-compatible HTTP API, without the web UI."""
from __future__ import annotations

import os
from pathlib import Path

import click

from workbench.cli.backend_opts import backend_choice
from workbench.cli.precheck import (DEFAULT_MODEL, before_loading, check_engine_preset,
                                    check_refs)


@click.command("serve")
@click.option("--model", default=lambda: os.environ.get("WORKBENCH_MODEL", DEFAULT_MODEL),
              show_default=DEFAULT_MODEL, help="Model preset, hub id or local folder.")
@click.option("--adapters", default=None,
              help="Comma-separated adapter refs to serve (default: each name's pinned version).")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; a non-loopback one needs --api-key and WORKBENCH_ADMIN_TOKEN.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535),
              help="Port to listen on.")
@click.option("--api-key", envvar="WORKBENCH_API_KEY", default=None,
              help="Bearer key clients must send for inference (env WORKBENCH_API_KEY).")
@click.option("--max-body-kb", default=256, show_default=True, type=click.IntRange(min=1),
              help="Largest request body on /v1 routes.")
@click.option("--preset", default="interactive", show_default=True,
              help="Engine preset (interactive, throughput).")
@click.option("--backend", type=click.Choice(["local", "openai"]), default="local", show_default=True,
              help="Generate on this process's engine, or forward to an OpenAI-compatible server "
              "(a vLLM cluster): routes, metrics and the admin API stay here.")
@click.option("--base-url", envvar="WORKBENCH_BACKEND_URL", multiple=True, metavar="URL",
              help="With --backend openai: the server's base URL, e.g. http://10.0.0.5:8000/v1; "
              "repeat for replicas (--adapters are then loaded on every one).")
@click.option("--replica-adapter-root", default=None, type=click.Path(path_type=Path),
              help="Where the replicas see the adapters registry, when mounted elsewhere.")
@click.option("--backend-api-key", envvar="WORKBENCH_BACKEND_API_KEY", default=None,
              help="With --backend openai: the server's bearer key.")
def serve_cmd(model: str, adapters: str | None, host: str, port: int, api_key: str | None,
              max_body_kb: int, preset: str, backend: str, base_url: tuple[str, ...],
              replica_adapter_root: Path | None, backend_api_key: str | None) -> None:
    """Serve /v1/chat/completions, /v1/completions, /v1/models, adapter admin and /metrics.

    Adapter administration (/v1/load_lora_adapter, /v1/unload_lora_adapter, ...) is on only
    when WORKBENCH_ADMIN_TOKEN is set; send it as 'Authorization: Bearer <token>'.

    Example: WORKBENCH_ADMIN_TOKEN=$(openssl rand -hex 16) workbench serve --port 8000 --api-key sk-local

    Example: workbench serve --port 8000 --backend openai --base-url http://10.0.0.5:8000/v1
    """
    from workbench.api.auth import APISettings, check_bind
    from workbench.config import engine_preset

    # Bind rule, engine preset and adapter names first: a mistake here needs no model load.
    settings = APISettings(api_key=api_key or None, max_body_bytes=max_body_kb * 1024)
    check_bind(host, settings, os.environ.get("WORKBENCH_ADMIN_TOKEN"))
    check_engine_preset(preset)
    choice = backend_choice(backend, base_url, backend_api_key)
    refs = [a.strip() for a in adapters.split(",") if a.strip()] if adapters else None
    check_refs(refs or [], choice.remote)
    before_loading()
    from workbench.api.app import create_api
    from workbench.api.server import serve

    from workbench.service.start import start_workbench

    wb = start_workbench(choice.kind, list(choice.base_urls), choice.api_key, model=model,
                         adapters=refs, engine_config=engine_preset(preset),
                         replica_adapter_root=replica_adapter_root)
    try:
        click.echo(f"Serving {wb.loaded.describe()} on http://{host}:{port}/v1 "
                   f"(adapters: {', '.join(v.ref for v in wb.served.values()) or 'none'}; "
                   f"admin API {'on' if wb.admin_enabled else 'off: set WORKBENCH_ADMIN_TOKEN'}; "
                   f"inference {'needs the API key' if settings.api_key else 'open to loopback clients'})")
        serve(create_api(wb, settings), host, port)
    finally:
        wb.close()


COMMANDS: list[click.Command] = [serve_cmd]
