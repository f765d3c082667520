"""What every command checks before anything heavy happens.

Loading a model takes seconds, and so does importing torch and transformers; a typo in a name
should not. So commands check their arguments first, with files only (the adapters registry,
the suite folders, the engine presets), and only then call :func:`before_loading` and load.
"""
from __future__ import annotations

from collections.abc import Iterable

# Light imports only: the request types never import torch, the catalog imports transformers
# only when a model is resolved.
from workbench.engine.request import BASE_NAMES
from workbench.models.catalog import DEFAULT_MODEL  # noqa: F401  (re-exported to the commands)

_quieted = False


def before_loading() -> None:
    """Mute third-party start-up chatter; once, right before the first heavy import or load
    (not when the CLI starts: it imports torch, which takes seconds)."""
    global _quieted
    if not _quieted:
        from workbench.console.quiet import quiet_imports

        quiet_imports()
        _quieted = True


def adapter_refs(variants: Iterable[str]) -> list[str]:
    """The adapter refs among variant names (the base excluded), in order."""
    return [v for v in variants if v and v not in BASE_NAMES]


def check_refs(refs: Iterable[str], remote: bool = False) -> None:
    """Every ``name`` or ``name@version`` is registered (an unknown one raises with the known
    names). A remote backend's variants are the server's models, so it checks nothing here."""
    if remote:
        return
    from workbench.adapters.registry import Registry

    registry = Registry()
    for ref in refs:
        registry.resolve(ref)


def check_engine_preset(name: str) -> None:
    from workbench.config import engine_preset

    engine_preset(name)


def check_model(name: str) -> None:
    """A model preset, a local folder or a hub id (``owner/name``); nothing is loaded."""
    before_loading()  # the catalog imports transformers
    from workbench.models.catalog import resolve_preset

    resolve_preset(name)
