"""The Adapters tab: the registry table and the live operations on the running engine.

Every button calls one function of ``workbench.service.lifecycle`` (or ``upload``), so the
UI and ``workbench adapters ...`` behave the same; a refused operation shows its message as
a warning toast and changes nothing. Load, unload, rollback and upload need the admin token
(``WORKBENCH_ADMIN_TOKEN``): the tab asks for it once per browser session and keeps it in
that session's state only, so the same actions called through Gradio's API, which cannot
set that state, are refused. With no token configured, administration is off.
"""
from __future__ import annotations

from collections.abc import Callable

import gradio as gr

from workbench.service import lifecycle
from workbench.service.lifecycle import AdapterRow
from workbench.adapters.upload import import_adapter
from workbench.engine import BASE_LABEL
from workbench.service.workbench import Workbench
from workbench.ui.common import guard, refuse
from workbench.ui.routes_panel import build_routes_panel


def table_rows(wb: Workbench) -> list[list[str]]:
    return [row.table_cells() for row in lifecycle.adapter_rows(wb.registry, wb)]


def ref_choices(wb: Workbench) -> list[str]:
    """name@version of every registered version, newest first within a name."""
    return [v.ref for n in wb.registry.names() for v in reversed(wb.registry.versions(n))]


def status_line(wb: Workbench, message: str = "") -> str:
    served = ", ".join(f"{v.ref}" for _, v in sorted(wb.served.items())) or "none"
    default = wb.default_adapter or BASE_LABEL
    return (f"{message}\n\n" if message else "") + f"Serving: {served} · Chat's right pane: **{default}**"


def default_message(name: str | None) -> str:
    """What "Set as right-pane default" did, in the Chat tab's terms."""
    return (f"Chat's right pane now defaults to **{name or BASE_LABEL}** "
            "(applies when you open the Chat tab).")


def _need_ref(ref: str | None) -> str:
    if not ref or not str(ref).strip():
        refuse("Pick an adapter (name@version) first.")
    return str(ref).strip()


def _admin(wb: Workbench, token: str | None) -> None:
    """The session's admin token, checked; raises before any change is made."""
    if wb.admin_enabled and not token:
        refuse("Enter the admin token above first (it is asked once per session).")
    wb.check_admin(token)


def _handlers(wb: Workbench) -> tuple[Callable[..., str], ...]:
    """load, unload, rollback, set-default and upload, each returning a status message; a
    refusal raises WorkbenchError (the events wrap them in ``guard``)."""

    def on_load(r, token):
        _admin(wb, token)
        return lifecycle.load(wb, _need_ref(r)).message

    def on_unload(r, wait, token):
        _admin(wb, token)
        return lifecycle.unload(wb, _need_ref(r), drain=bool(wait)).message

    def on_rollback(r, token):
        _admin(wb, token)
        return lifecycle.rollback(wb, _need_ref(r)).message

    def on_default(r):
        ref = _need_ref(r)
        return default_message(lifecycle.set_default(wb, None if ref.lower() == BASE_LABEL else ref))

    def on_upload(path, name, version, token):
        if not path:
            return ""
        _admin(wb, token)
        registered = import_adapter(wb.registry, path, wb.validate_adapter, name=(name or "").strip() or None,
                                    version=(version or "").strip() or None)
        return f"Registered {registered.ref} (validated against {wb.loaded.model_id}); load it to serve it."

    return on_load, on_unload, on_rollback, on_default, on_upload


def refreshing(wb: Workbench, handler: Callable[..., str]) -> Callable[..., tuple]:
    """An event function: ``handler``'s message with the table, the picker and the status
    line refreshed; a refusal is a warning toast that leaves all three as they were."""

    @guard
    def run(*args):
        message = handler(*args)
        return table_rows(wb), gr.update(choices=ref_choices(wb)), status_line(wb, message)

    return run


def unlock(wb: Workbench, token: str | None) -> tuple[str, str]:
    """Check the typed token once; returns (token kept for the session, status message), or
    raises AuthError for a wrong one."""
    typed = (token or "").strip() or None
    wb.check_admin(typed)
    return typed, "Administration unlocked for this session."


def _token_row(wb: Workbench, token: gr.State, status: gr.Markdown) -> None:
    if not wb.admin_enabled:
        gr.Markdown("Adapter administration is **off**: start the app with `WORKBENCH_ADMIN_TOKEN` "
                    "set to load, unload, roll back or upload adapters.", elem_id="adapters-admin-off")
        return
    with gr.Row(elem_id="adapters-token-row") as row:
        box = gr.Textbox(label="Admin token", type="password", elem_id="adapters-token", scale=3)
        button = gr.Button("Unlock", elem_id="adapters-unlock")

    @guard
    def on_unlock(typed: str):
        kept, message = unlock(wb, typed)
        return kept, gr.update(visible=False), status_line(wb, message)

    for trigger in (button.click, box.submit):
        trigger(on_unlock, box, [token, row, status], api_visibility="private")


def build_adapters_tab(wb: Workbench, tab: gr.Tab) -> None:
    gr.Markdown("Registered adapter versions. Load serves a version (hot-swapping a name that is "
                "already served, between batches); rollback returns a name to its previous version.")
    table = gr.Dataframe(table_rows(wb), headers=list(AdapterRow.TABLE_HEADERS), interactive=False,
                         elem_id="adapters-table", wrap=True,
                         column_widths=list(AdapterRow.TABLE_WIDTHS))
    with gr.Row():
        ref = gr.Dropdown(ref_choices(wb), label="Adapter (name@version)", allow_custom_value=True,
                          elem_id="adapters-ref", scale=3)
        drain = gr.Checkbox(False, label="Unload waits for queued requests", elem_id="adapters-drain")
    with gr.Row():
        load = gr.Button("Load / swap", variant="primary", elem_id="adapters-load")
        unload = gr.Button("Unload", elem_id="adapters-unload")
        rollback = gr.Button("Roll back", elem_id="adapters-rollback")
        default = gr.Button("Set as right-pane default", elem_id="adapters-default")
    with gr.Row():
        up_name = gr.Textbox(label="Upload as name (default: from the zip)", elem_id="adapters-upload-name")
        up_version = gr.Textbox(label="Version (default: next vN)", elem_id="adapters-upload-version")
    upload = gr.File(label="Upload a zipped adapter folder", file_types=[".zip"], type="filepath",
                     elem_id="adapters-upload")
    status = gr.Markdown(status_line(wb), elem_id="adapters-status")
    token = gr.State(None)
    _token_row(wb, token, status)
    with gr.Accordion("A/B routes: traffic split, guarded rollout", open=False,
                      elem_id="adapters-routes"):
        build_routes_panel(wb)

    outputs = [table, ref, status]
    on_load, on_unload, on_rollback, on_default, on_upload = (refreshing(wb, h) for h in _handlers(wb))
    # Admin actions are not offered to API clients at all (the session token guards them too).
    private = {"api_visibility": "private"}
    load.click(on_load, [ref, token], outputs, **private)
    unload.click(on_unload, [ref, drain, token], outputs, **private)
    rollback.click(on_rollback, [ref, token], outputs, **private)
    default.click(on_default, ref, outputs)
    upload.upload(on_upload, [upload, up_name, up_version, token], outputs, **private)
    tab.select(refreshing(wb, lambda: ""), None, outputs)
