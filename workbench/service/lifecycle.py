"""Live adapter operations on a running Workbench: load, unload, hot-swap, rollback, default.

Each operation validates first (files only), then changes the engine in one step between
batches, and only then updates ``wb.served`` and the rollback history, so a refused or failed
operation leaves registry, engine and ``wb.served`` exactly as they were. A request keeps the
adapter weights it started with: swaps happen between batches, never inside one.

The history (a short stack of versions served per name, :mod:`lifecycle_history`) is kept
in ``WORKBENCH_HOME`` so that ``workbench adapters rollback`` in a fresh process, and the
next start through :func:`pinned_refs`, see what the UI did: after a rollback the next start
serves the version rolled back to, not the newest. A swap or unload goes through
``Workbench.exclusive``: requests admitted for the old version end on it, new ones wait.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from typing import TYPE_CHECKING

from workbench.adapters.lifecycle_history import (HISTORY_LEN, history, pinned_refs, push,
                                                  save_stack)
from workbench.adapters.registry import AdapterVersion, Registry, parse_ref, version_key
from workbench.engine import BASE_ADAPTER
from workbench.errors import AdapterError, UnknownNameError

if TYPE_CHECKING:
    from workbench.service.workbench import Workbench

__all__ = ["HISTORY_LEN", "OpResult", "adapter_rows", "history", "load", "pinned_refs",
           "rollback", "set_default", "swap", "unload"]
# One lifecycle operation at a time (UI callbacks run on several threads).
_LOCK = threading.RLock()
# How long a swap waits for the name's requests in flight before it is refused.
SWAP_DRAIN_S = 120.0


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
        push(wb.registry, version.name, version.version)
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
        with wb.exclusive(name, timeout if drain else 0.0):
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
        save_stack(wb.registry, name, stack or [target.version])
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
    wb.validate_adapter(target.path)
    # Requests admitted for the old version finish on it; new ones wait and get the new one.
    with wb.exclusive(target.name, SWAP_DRAIN_S):
        try:
            wb.engine.replace_adapter(target.name, target.path, current.path)
        finally:
            # Should even the restore of the old version fail, wb.served must not name it.
            if target.name not in wb.engine.adapters:
                wb.served.pop(target.name, None)
        wb.served[target.name] = target
    if record:
        push(wb.registry, target.name, target.version)
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


# ---- listing ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class AdapterRow:
    """One registered version as the UI table and ``workbench adapters list`` show it.

    ``cells()`` under ``HEADERS`` is the full record (the CLI listing and the admin API's
    JSON keys); ``table_cells()`` under ``TABLE_HEADERS`` is the Adapters tab's narrower view,
    made to fit a laptop screen: short titles, shortened modules and eval figures.
    """

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
    # Short forms for the tab: target modules ("q k v o gate up down · layers 20–29") and
    # one figure per suite ("intents 21.7% · policy 25%").
    targets: str = ""
    eval_short: str = ""

    HEADERS = ("name@version", "base", "rank", "size", "created", "eval", "loaded")
    TABLE_HEADERS = ("Adapter", "Version", "Rank", "Target modules", "Loaded", "Eval", "Created")
    # Column widths in TABLE_HEADERS order: fixed, so they fit a laptop screen (1190 px in
    # all) and a phone scrolls the table sideways instead of breaking words into letters.
    TABLE_WIDTHS = ("190px", "76px", "60px", "210px", "140px", "350px", "164px")

    def cells(self) -> list[str]:
        return [self.ref, self.base, self.rank, self.size, self.created, self.eval, self.loaded]

    def table_cells(self) -> list[str]:
        name, _, version = self.ref.partition("@")
        loaded = {"yes": "yes", "default": "yes · chat default"}.get(self.loaded, "")
        return [name, version, self.rank, self.targets, loaded, self.eval_short,
                self.created.replace("T", " ")[:16]]


def adapter_rows(registry: Registry, wb: Workbench | None = None) -> list[AdapterRow]:
    """Every registered version; needs no model (``wb`` only marks what is served)."""
    rows = []
    for v in registry.all():
        served = wb is not None and _served(wb, v.name) is not None and wb.served[v.name].version == v.version
        mark = ("default" if wb is not None and wb.default_adapter == v.name else "yes") if served else ""
        rows.append(AdapterRow(v.ref, v.base_model, str(v.rank or ""), f"{v.size_bytes / 1e6:.1f} MB",
                               v.created, v.eval_summary, mark, short_targets(v.config),
                               short_eval(v.card.get("eval"))))
    return rows


# Usual order of a decoder layer's projections; "_proj" is dropped from the names.
_MODULE_ORDER = ("q", "k", "v", "o", "qkv", "query_key_value", "dense", "gate", "up", "down",
                 "gate_up", "fc1", "fc2")


def short_targets(config: dict, width: int = 40) -> str:
    """``q k v o gate up down · layers 20–29`` from an adapter_config.json."""
    targets = config.get("target_modules")
    if isinstance(targets, str):
        text = "all linear" if targets == "all-linear" else targets
    else:
        names = [str(t).rsplit(".", 1)[-1].removesuffix("_proj") for t in targets or []]
        order = {n: i for i, n in enumerate(_MODULE_ORDER)}
        text = " ".join(sorted(dict.fromkeys(names), key=lambda n: (order.get(n, len(order)), n)))
    layers = config.get("layers_to_transform")
    if isinstance(layers, list) and layers and all(isinstance(x, int) for x in layers):
        span = f"{min(layers)}–{max(layers)}" if len(layers) > 1 else str(layers[0])
        text += f" · layers {span}"
    return text if len(text) <= width else text[: width - 1] + "…"


def short_eval(entries: object) -> str:
    """One figure per suite from a card's "eval" block: ``intents 21.7% · policy 25%``.

    Suites are named by the last word of their name ("multilingual-intents" -> "intents")
    unless that would make two entries look alike; the figure is the resolution rate (for
    label suites it equals accuracy). The full line is ``AdapterVersion.eval_summary``.
    """
    if isinstance(entries, str):
        return entries
    if not isinstance(entries, dict) or not entries:
        return ""
    found = []
    for key, value in sorted(entries.items()):
        suite, digest = key.split("@")[0], ""
        if isinstance(value, dict):
            suite, digest = str(value.get("suite", suite)), str(value.get("suite_hash", ""))
            value = value.get("resolution_rate", value.get("accuracy"))
        found.append((suite, digest, value))
    labels = [s.rsplit("-", 1)[-1] for s, _, _ in found]
    if len(set(labels)) < len(labels):
        labels = [s for s, _, _ in found]
    if len(set(labels)) < len(labels):  # one suite name, other items: tell them apart
        labels = [f"{s} [{d[:6]}]" if d else s for s, d, _ in found]
    return " · ".join(f"{label} {_figure(v)}" for label, (_, _, v) in zip(labels, found))


def _figure(value: object) -> str:
    if isinstance(value, float) and 0.0 <= value <= 1.0:
        return f"{value * 100:.1f}".removesuffix(".0") + "%"
    if isinstance(value, float):
        return f"{value:.1f}"
    return "–" if value is None else str(value)
