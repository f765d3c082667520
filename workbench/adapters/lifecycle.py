"""Live adapter operations on a running Workbench: load, unload, hot-swap, rollback, default.

Each operation validates first (files only), then changes the engine in one step between
batches, and only then updates ``wb.served`` and the rollback history, so a refused or failed
operation leaves registry, engine and ``wb.served`` exactly as they were. A request keeps the
adapter weights it started with: swaps happen between batches, never inside one.

The history (a short stack of versions served per name) is kept in ``WORKBENCH_HOME`` so
that ``workbench adapters rollback`` in a fresh process, and the next start through
:func:`pinned_refs`, see what the UI did.
"""
from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from workbench.adapters.registry import (AdapterVersion, Registry, parse_ref, version_key,
                                         write_json_atomic)
from workbench.adapters.validate import validate_adapter
from workbench.config import workbench_home
from workbench.engine import BASE_ADAPTER
from workbench.errors import AdapterError, UnknownNameError
from workbench.service import Workbench

# Versions remembered per name; rollback can step back this far.
HISTORY_LEN = 8
# One lifecycle operation at a time (UI callbacks run on several threads).
_LOCK = threading.RLock()


@dataclass(frozen=True)
class OpResult:
    """Outcome of a lifecycle operation, for the UI status line and the CLI."""

    # Adapter name the operation acted on.
    name: str
    # Version served before (None when the name was not served).
    before: str | None
    # Version served after (None after an unload).
    after: str | None
    # Seconds from the call to the engine serving the result.
    seconds: float
    # One line for people: "cs-support: v2 -> v1 (rollback, 0.41 s)".
    message: str


def _result(name: str, before: str | None, after: str | None, what: str, t0: float) -> OpResult:
    secs = time.monotonic() - t0
    return OpResult(name, before, after, secs,
                    f"{name}: {before or '-'} -> {after or '-'} ({what}, {secs:.2f} s)")


# ---- operations ------------------------------------------------------------------------
def load(wb: Workbench, ref: str) -> OpResult:
    """Serve ``name@version`` (``name``: newest); swaps in place when the name is served."""
    with _LOCK:
        t0 = time.monotonic()
        version = wb.registry.resolve(ref)
        current = _served(wb, version.name)
        if current is not None:
            return _swap_locked(wb, current, version, "hot-swap", t0)
        if version.name in wb.engine.adapters:
            raise AdapterError(f"An adapter named '{version.name}' is loaded outside the registry; "
                               "unload it first.")
        wb.serve(version)
        _push(wb.registry, version.name, version.version)
        if wb.default_adapter is None:
            wb.default_adapter = version.name
        return _result(version.name, None, version.version, "load", t0)


def swap(wb: Workbench, ref: str) -> OpResult:
    """Hot-swap a served name to another registered version, atomically between batches."""
    with _LOCK:
        t0 = time.monotonic()
        version = wb.registry.resolve(ref)
        current = _served(wb, version.name)
        if current is None:
            raise AdapterError(f"'{version.name}' is not served, so there is nothing to swap; "
                               f"load {version.ref} instead.")
        return _swap_locked(wb, current, version, "hot-swap", t0)


def unload(wb: Workbench, name: str, drain: bool = False, timeout: float = 60.0) -> OpResult:
    """Stop serving ``name``; refused while it has requests, unless ``drain`` waits for them."""
    with _LOCK:
        t0 = time.monotonic()
        name, _ = parse_ref(name)  # "name@v1" is accepted too; the version is ignored
        if name not in wb.engine.adapters:
            raise UnknownNameError("loaded adapter", name, wb.engine.adapters)
        wb.engine.unload_adapter(name, drain=drain, timeout=timeout)
        before = wb.served.pop(name, None)
        if wb.default_adapter == name:
            wb.default_adapter = sorted(wb.served)[0] if wb.served else None
        return _result(name, before.version if before else None, None, "unload", t0)


def rollback(wb: Workbench, name: str, to: str | None = None) -> OpResult:
    """Point ``name`` back to the version it served before (or to version ``to``)."""
    with _LOCK:
        t0 = time.monotonic()
        name, _ = parse_ref(name)
        current = _served(wb, name)
        if current is None:
            raise AdapterError(f"'{name}' is not served; load it before rolling it back.")
        target = wb.registry.resolve(f"{name}@{to}") if to else _previous(wb.registry, current)
        stack = [v for v in history(wb.registry, name) if v != current.version]
        # Drop the versions newer in the stack than the target, so a second rollback goes
        # further back instead of toggling between two versions.
        while stack and stack[-1] != target.version:
            stack.pop()
        result = _swap_locked(wb, current, target, "rollback", t0, record=False)
        _save_stack(wb.registry, name, stack or [target.version])
        return result


def set_default(wb: Workbench, name: str | None) -> str | None:
    """Make ``name`` the adapter preselected in the right-hand chat pane (None: base)."""
    if name in (None, "", BASE_ADAPTER):
        wb.default_adapter = None
        return None
    name, _ = parse_ref(name)
    if name not in wb.engine.adapters:
        raise UnknownNameError("loaded adapter", name, wb.engine.adapters)
    wb.default_adapter = name
    return name


# ---- helpers ---------------------------------------------------------------------------
def _served(wb: Workbench, name: str) -> AdapterVersion | None:
    version = wb.served.get(name)
    return version if version is not None and name in wb.engine.adapters else None


def _swap_locked(wb: Workbench, current: AdapterVersion, target: AdapterVersion, what: str,
                 t0: float, record: bool = True) -> OpResult:
    if target.version == current.version:
        raise AdapterError(f"{target.ref} is already being served.")
    validate_adapter(target.path, wb.loaded)
    try:
        wb.engine.replace_adapter(target.name, target.path, current.path)
    finally:
        # Should even the restore of the old version fail, wb.served must not name it.
        if target.name not in wb.engine.adapters:
            wb.served.pop(target.name, None)
    wb.served[target.name] = target
    if record:
        _push(wb.registry, target.name, target.version)
    return _result(target.name, current.version, target.version, what, t0)


def _previous(registry: Registry, current: AdapterVersion) -> AdapterVersion:
    """The last version served before ``current`` that still exists, else the next older one."""
    existing = {v.version: v for v in registry.versions(current.name)}
    for version in reversed(history(registry, current.name)):
        if version != current.version and version in existing:
            return existing[version]
    older = [v for v in existing.values() if v.version != current.version
             and _order(v) < _order(current)]
    if not older:
        raise AdapterError(f"'{current.name}' has no version before {current.version} to roll back to.")
    return max(older, key=_order)


def _order(version: AdapterVersion) -> tuple:
    return version_key(version.version)


# ---- rollback history, persisted -----------------------------------------------------------
def _history_file() -> Path:
    return workbench_home() / "adapter_history.json"


def _read_all() -> dict:
    try:
        data = json.loads(_history_file().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _key(registry: Registry) -> str:
    return str(Path(registry.root).resolve())


def history(registry: Registry, name: str) -> list[str]:
    """Versions served under ``name``, oldest first; the last is the one served now."""
    stack = _read_all().get(_key(registry), {}).get(name, [])
    return [v for v in stack if isinstance(v, str)]


def _save_stack(registry: Registry, name: str, stack: list[str]) -> None:
    with _LOCK:
        data = _read_all()
        data.setdefault(_key(registry), {})[name] = stack[-HISTORY_LEN:]
        write_json_atomic(_history_file(), data)


def _push(registry: Registry, name: str, version: str) -> None:
    stack = [v for v in history(registry, name) if v != version]
    _save_stack(registry, name, [*stack, version])


def pinned_refs(registry: Registry) -> list[str]:
    """``name@version`` last served per name (newest for names never served), to start with."""
    refs = []
    for name in registry.names():
        versions = {v.version for v in registry.versions(name)}
        pinned = [v for v in history(registry, name) if v in versions]
        refs.append(f"{name}@{pinned[-1]}" if pinned else registry.versions(name)[-1].ref)
    return refs


# ---- listing ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class AdapterRow:
    """One registered version as the UI table and ``workbench adapters list`` show it."""

    # name@version.
    ref: str
    # Base model id the adapter names.
    base: str
    # LoRA rank ("" when unreadable).
    rank: str
    # Size on disk, e.g. "9.8 MB".
    size: str
    # Card's created time.
    created: str
    # One-line eval summary from the card.
    eval: str
    # "yes" when this exact version is served now, "default" when it is also the default.
    loaded: str

    HEADERS = ("name@version", "base", "rank", "size", "created", "eval", "loaded")

    def cells(self) -> list[str]:
        return [self.ref, self.base, self.rank, self.size, self.created, self.eval, self.loaded]


def adapter_rows(registry: Registry, wb: Workbench | None = None) -> list[AdapterRow]:
    """Every registered version; needs no model (``wb`` only marks what is served)."""
    rows = []
    for v in registry.all():
        served = wb is not None and _served(wb, v.name) is not None and wb.served[v.name].version == v.version
        mark = ("default" if wb is not None and wb.default_adapter == v.name else "yes") if served else ""
        rows.append(AdapterRow(v.ref, v.base_model, str(v.rank or ""), f"{v.size_bytes / 1e6:.1f} MB",
                               v.created, v.eval_summary, mark))
    return rows
