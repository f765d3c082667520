"""``--backend local|openai --base-url URL --backend-api-key K``: one set of options for every
command that can run on this process's engine or on a remote OpenAI-compatible server (the key
is named as on ``workbench serve``, where ``--api-key`` is the workbench's own key; the short
``--api-key`` stays accepted here)."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import click

F = TypeVar("F", bound=Callable)


@dataclass(frozen=True)
class BackendChoice:
    """Where generations run: ``local`` (the in-process engine) or ``openai`` (a server)."""

    kind: str = "local"
    # One server, or several replicas of it.
    base_urls: tuple[str, ...] = ()
    api_key: str | None = None

    @property
    def remote(self) -> bool:
        return self.kind == "openai"

    def start(self, model: str, adapters: list[str] | None = None, engine_config=None):
        """A running Workbench on this backend (``model`` is ignored for a remote one)."""
        from workbench.service.start import start_workbench

        return start_workbench(self.kind, list(self.base_urls), self.api_key, model=model,
                               adapters=adapters, engine_config=engine_config)


def backend_options(fn: F) -> F:
    """Add the three options (parameters ``backend``, ``base_url``, ``api_key``); the command
    turns them into a :class:`BackendChoice` with :func:`backend_choice`."""
    fn = click.option("--backend-api-key", "--api-key", "api_key", envvar="WORKBENCH_BACKEND_API_KEY",
                      default=None,
                      help="Bearer key of the remote server (env WORKBENCH_BACKEND_API_KEY).")(fn)
    fn = click.option("--base-url", envvar="WORKBENCH_BACKEND_URL", multiple=True, metavar="URL",
                      help="The remote server's OpenAI base URL, e.g. http://127.0.0.1:8000/v1; "
                      "repeat for replicas.")(fn)
    fn = click.option("--backend", type=click.Choice(["local", "openai"]), default="local",
                      show_default=True,
                      help="Run on this process's engine, or on an OpenAI-compatible server.")(fn)
    return fn


def backend_choice(backend: str, base_url: str | tuple[str, ...] | None,
                   api_key: str | None) -> BackendChoice:
    """Check the combination before anything loads."""
    urls = (base_url,) if isinstance(base_url, str) else tuple(base_url or ())
    if backend == "openai" and not urls:
        raise click.UsageError("--backend openai needs --base-url (e.g. http://127.0.0.1:8000/v1).")
    if backend == "local" and urls:
        raise click.UsageError("--base-url is for --backend openai.")
    return BackendChoice(backend, urls, api_key)
