"""The Adapters tab: the registry table and the live operations on the running engine.

Every button calls one function of ``workbench.adapters.lifecycle`` (or ``upload``), so the
UI and ``workbench adapters ...`` behave the same; a refused operation shows its message as
``gr.Error`` and changes nothing.
"""
from __future__ import annotations

from collections.abc import Callable

import gradio as gr

from workbench.adapters import lifecycle
from workbench.adapters.lifecycle import AdapterRow
from workbench.adapters.upload import import_adapter
from workbench.errors import WorkbenchError
from workbench.service import Workbench


def table_rows(wb: Workbench) -> list[list[str]]:
    return [row.cells() for row in lifecycle.adapter_rows(wb.registry, wb)]


def ref_choices(wb: Workbench) -> list[str]:
    """name@version of every registered version, newest first within a name."""
    return [v.ref for n in wb.registry.names() for v in reversed(wb.registry.versions(n))]


def status_line(wb: Workbench, message: str = "") -> str:
    served = ", ".join(f"{v.ref}" for _, v in sorted(wb.served.items())) or "none"
    default = wb.default_adapter or "base"
    return (f"{message}\n\n" if message else "") + f"Serving: {served} · right-pane default: **{default}**"


def _guard(fn: Callable[..., str]) -> Callable[..., str]:
    """Turn WorkbenchError into gr.Error: the message reaches the user, nothing else happens."""

    def run(*args):
        try:
            return fn(*args)
        except WorkbenchError as exc:
            raise gr.Error(exc.message) from exc

    return run


def _need_ref(ref: str | None) -> str:
    if not ref or not str(ref).strip():
        raise gr.Error("Pick an adapter (name@version) first.")
    return str(ref).strip()


def _handlers(wb: Workbench) -> tuple[Callable[..., str], ...]:
    """load, unload, rollback, set-default and upload, each returning a status message."""

    @_guard
    def on_load(r):
        return lifecycle.load(wb, _need_ref(r)).message

    @_guard
    def on_unload(r, wait):
        return lifecycle.unload(wb, _need_ref(r), drain=bool(wait)).message

    @_guard
    def on_rollback(r):
        return lifecycle.rollback(wb, _need_ref(r)).message

    @_guard
    def on_default(r):
        return f"Right-pane default: {lifecycle.set_default(wb, _need_ref(r)) or 'base'}"

    @_guard
    def on_upload(path):
        if not path:
            return ""
        version = import_adapter(wb.registry, path, wb.loaded)
        return f"Registered {version.ref} (validated against {wb.loaded.model_id}); load it to serve it."

    return on_load, on_unload, on_rollback, on_default, on_upload


def build_adapters_tab(wb: Workbench, tab: gr.Tab) -> None:
    gr.Markdown("Registered adapter versions. Load serves a version (hot-swapping a name that is "
                "already served, between batches); rollback returns a name to its previous version.")
    table = gr.Dataframe(table_rows(wb), headers=list(AdapterRow.HEADERS), interactive=False,
                         elem_id="adapters-table", wrap=True)
    with gr.Row():
        ref = gr.Dropdown(ref_choices(wb), label="Adapter (name@version)", allow_custom_value=True,
                          elem_id="adapters-ref", scale=3)
        drain = gr.Checkbox(False, label="Unload waits for queued requests", elem_id="adapters-drain")
    with gr.Row():
        load = gr.Button("Load / swap", variant="primary", elem_id="adapters-load")
        unload = gr.Button("Unload", elem_id="adapters-unload")
        rollback = gr.Button("Roll back", elem_id="adapters-rollback")
        default = gr.Button("Set as right-pane default", elem_id="adapters-default")
    upload = gr.File(label="Upload a zipped adapter folder", file_types=[".zip"], type="filepath",
                     elem_id="adapters-upload")
    status = gr.Markdown(status_line(wb), elem_id="adapters-status")

    def refreshed(message: str):
        return table_rows(wb), gr.update(choices=ref_choices(wb)), status_line(wb, message)

    outputs = [table, ref, status]
    on_load, on_unload, on_rollback, on_default, on_upload = _handlers(wb)
    load.click(lambda r: refreshed(on_load(r)), ref, outputs)
    unload.click(lambda r, w: refreshed(on_unload(r, w)), [ref, drain], outputs)
    rollback.click(lambda r: refreshed(on_rollback(r)), ref, outputs)
    default.click(lambda r: refreshed(on_default(r)), ref, outputs)
    upload.upload(lambda p: refreshed(on_upload(p)), upload, outputs)
    tab.select(lambda: refreshed(""), None, outputs)
