"""The rollback history of served adapter versions, persisted in ``WORKBENCH_HOME``.

Per registry root and adapter name, a short stack of the versions served (oldest first; the
last is the one served now). ``pinned_refs`` turns it into the refs a fresh start serves, so
a rollback is remembered across restarts. No model or engine here.
"""
from __future__ import annotations

import json
import threading
from pathlib import Path

from workbench.adapters.registry import Registry, write_json_atomic
from workbench.config import workbench_home

# Versions remembered per name; rollback can step back this far.
HISTORY_LEN = 8
_LOCK = threading.RLock()


def history_file() -> Path:
    return workbench_home() / "adapter_history.json"


def _read_all() -> dict:
    try:
        data = json.loads(history_file().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _key(registry: Registry) -> str:
    return str(Path(registry.root).resolve())


def history(registry: Registry, name: str) -> list[str]:
    """Versions served under ``name``, oldest first; the last is the one served now."""
    stack = _read_all().get(_key(registry), {}).get(name, [])
    return [v for v in stack if isinstance(v, str)]


def save_stack(registry: Registry, name: str, stack: list[str]) -> None:
    with _LOCK:
        data = _read_all()
        data.setdefault(_key(registry), {})[name] = stack[-HISTORY_LEN:]
        write_json_atomic(history_file(), data)


def push(registry: Registry, name: str, version: str) -> None:
    stack = [v for v in history(registry, name) if v != version]
    save_stack(registry, name, [*stack, version])


def pinned_refs(registry: Registry) -> list[str]:
    """``name@version`` last served per name (newest for names never served), to start with."""
    refs = []
    for name in registry.names():
        versions = {v.version for v in registry.versions(name)}
        pinned = [v for v in history(registry, name) if v in versions]
        refs.append(f"{name}@{pinned[-1]}" if pinned else registry.versions(name)[-1].ref)
    return refs


