"""The ``workbench`` command line: headless versions of what the app does."""
from __future__ import annotations

import logging
import sys

import click

from workbench.errors import WorkbenchError

# Nothing heavy is imported here: each command checks its arguments first and imports torch
# and the model only after that (workbench.cli.precheck), so a typo is answered at once.


class WorkbenchGroup(click.Group):
    """Turns WorkbenchError into a clean message and its exit code, never a traceback."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except WorkbenchError as exc:
            click.secho(f"Error: {exc.message}", fg="red", err=True)
            sys.exit(exc.exit_code)


@click.group(cls=WorkbenchGroup)
@click.option("-v", "--verbose", is_flag=True, help="Log engine activity to stderr.")
@click.version_option(package_name="glm-support-workbench")
def main(verbose: bool) -> None:
    """GLM support workbench: serve, chat with, evaluate and tune multilingual support models.

    Example: workbench bench --model smollm2-135m --concurrency 16 --requests 64
    """
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")


# Imported explicitly: a command module that fails to import must fail loudly.
from workbench.cli import (adapter_cmds, core, eval_cmds, feedback_cmds,  # noqa: E402
                           monitor_cmds, routes_cmds, serve_cmds)

for _module in (core, eval_cmds, adapter_cmds, serve_cmds, routes_cmds, feedback_cmds, monitor_cmds):
    for _cmd in _module.COMMANDS:
        main.add_command(_cmd)
