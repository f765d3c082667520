"""Start the workbench app: ``python app.py [--model NAME] [--host H] [--port P]``.

Serves on http://127.0.0.1:7860 by default, on the embedded SmolLM2-135M-Instruct model.
Importing this module builds ``demo`` from the environment (WORKBENCH_MODEL), for tools
that look for a module-level Gradio app.
"""
from __future__ import annotations

import argparse
import os
import sys

from workbench.quiet import quiet_imports

quiet_imports()

from workbench.errors import WorkbenchError  # noqa: E402
from workbench.models.catalog import DEFAULT_MODEL  # noqa: E402
from workbench.service import Workbench  # noqa: E402
from workbench.ui.app import build_demo, launch_kwargs  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description="GLM support workbench (web app)")
    ap.add_argument("--model", default=os.environ.get("WORKBENCH_MODEL", DEFAULT_MODEL),
                    help="model preset, hub id or local folder (default: %(default)s)")
    ap.add_argument("--adapters", default=None,
                    help="comma-separated adapter refs to load (default: every compatible one)")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=7860)
    return ap.parse_args(argv)


def create_demo(model: str, adapters: list[str] | None = None):
    wb = Workbench.start(model=model, adapters=adapters)
    return build_demo(wb), wb


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    refs = [a for a in args.adapters.split(",") if a] if args.adapters else None
    try:
        demo, wb = create_demo(args.model, refs)
    except WorkbenchError as exc:
        print(f"Error: {exc.message}", file=sys.stderr)
        return exc.exit_code
    print(f"Ready: {wb.loaded.describe()} in {wb.loaded.load_seconds:.1f} s; "
          f"adapters: {', '.join(wb.engine.adapters) or 'none'}", flush=True)
    demo.queue(default_concurrency_limit=32).launch(
        server_name=args.host, server_port=args.port, **launch_kwargs())
    return 0


if __name__ == "__main__":
    sys.exit(main())
else:  # imported: expose a module-level app
    demo, _wb = create_demo(os.environ.get("WORKBENCH_MODEL", DEFAULT_MODEL))
