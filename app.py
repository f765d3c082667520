"""Start the workbench: the web UI at ``/`` and the OpenAI-compatible API at ``/v1``, one port.

``python app.py [--model NAME] [--host H] [--port P] [--api-key KEY]`` serves on
http://127.0.0.1:7860 by default, on the embedded SmolLM2-135M-Instruct model; one
Workbench (one engine, one copy of the weights) serves both faces. Adapter administration
(UI buttons and /v1 admin routes) needs ``WORKBENCH_ADMIN_TOKEN`` and is off without it.
Importing this module builds ``demo`` from the environment (WORKBENCH_MODEL), for tools
that look for a module-level Gradio app.
"""
from __future__ import annotations

import argparse
import os
import sys

from workbench.console.quiet import quiet_imports

quiet_imports()

from workbench.service.start import BACKENDS, start_workbench  # noqa: E402
from workbench.errors import WorkbenchError  # noqa: E402
from workbench.models.catalog import DEFAULT_MODEL  # noqa: E402
from workbench.service.workbench import Workbench  # noqa: E402
from workbench.ui.app import build_demo, launch_kwargs  # noqa: E402

# Largest file the UI accepts (adapter zips), the same cap the upload path applies.
MAX_UPLOAD_BYTES = 200 << 20


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description="GLM support workbench (web app and API)")
    ap.add_argument("--model", default=os.environ.get("WORKBENCH_MODEL", DEFAULT_MODEL),
                    help="model preset, hub id or local folder (default: %(default)s)")
    ap.add_argument("--adapters", default=None,
                    help="comma-separated adapter refs to load (default: each name's pinned version)")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=7860)
    ap.add_argument("--api-key", default=os.environ.get("WORKBENCH_API_KEY"),
                    help="Bearer key for the /v1 inference routes (env WORKBENCH_API_KEY)")
    ap.add_argument("--backend", choices=BACKENDS, default="local",
                    help="generate on this process's engine, or on an OpenAI-compatible server")
    ap.add_argument("--base-url", action="append", default=None,
                    help="with --backend openai: the server's base URL, e.g. http://10.0.0.5:8000/v1; "
                         "repeat for replicas (env WORKBENCH_BACKEND_URL: one URL)")
    ap.add_argument("--backend-api-key", default=os.environ.get("WORKBENCH_BACKEND_API_KEY"),
                    help="with --backend openai: the server's bearer key")
    return ap.parse_args(argv)


def create_demo(model: str, adapters: list[str] | None = None, backend: str = "local",
                base_url: list[str] | str | None = None, backend_api_key: str | None = None):
    wb = start_workbench(backend, base_url, backend_api_key, model=model, adapters=adapters)
    return build_demo(wb), wb


def build_app(wb: Workbench, demo, settings=None):
    """One FastAPI app: the API routes first, the Gradio UI mounted at ``/`` behind them."""
    import gradio as gr

    from workbench.api.app import create_api

    api = create_api(wb, settings)
    demo.queue(default_concurrency_limit=32)
    return gr.mount_gradio_app(api, demo, path="/", max_file_size=MAX_UPLOAD_BYTES, **launch_kwargs())


def main(argv: list[str] | None = None) -> int:
    from workbench.api.auth import APISettings, check_bind
    from workbench.api.server import serve

    args = parse_args(argv)
    refs = [a for a in args.adapters.split(",") if a] if args.adapters else None
    settings = APISettings(api_key=args.api_key or None)
    try:
        check_bind(args.host, settings, os.environ.get("WORKBENCH_ADMIN_TOKEN"))
        urls = args.base_url or [u for u in [os.environ.get("WORKBENCH_BACKEND_URL")] if u]
        demo, wb = create_demo(args.model, refs, args.backend, urls, args.backend_api_key)
    except WorkbenchError as exc:
        print(f"Error: {exc.message}", file=sys.stderr)
        return exc.exit_code
    print(f"Ready: {wb.loaded.describe()} in {wb.loaded.load_seconds:.1f} s; "
          f"adapters: {', '.join(wb.engine.adapters) or 'none'}; UI http://{args.host}:{args.port}/ , "
          f"API http://{args.host}:{args.port}/v1 (admin {'on' if wb.admin_enabled else 'off'})", flush=True)
    try:
        serve(build_app(wb, demo, settings), args.host, args.port)
    finally:
        wb.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
else:  # imported: expose a module-level app
    demo, _wb = create_demo(os.environ.get("WORKBENCH_MODEL", DEFAULT_MODEL))
