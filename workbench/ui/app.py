"""Builds the Gradio app around a running Workbench."""
from __future__ import annotations

import importlib
import importlib.util

import gradio as gr

from workbench.service import Workbench

# (tab title, module under workbench.ui, builder function); a tab whose module is absent is skipped.
TABS = (
    ("Chat", "chat_tab", "build_chat_tab"),
    ("Evaluate", "evaluate_tab", "build_evaluate_tab"),
    ("Adapters", "adapters_tab", "build_adapters_tab"),
)

CSS = """
#chat-left-stats, #chat-right-stats { font-size: 0.85em; opacity: 0.8; min-height: 1.4em; }
"""


def header_markdown(wb: Workbench) -> str:
    adapters = ", ".join(wb.variant_label(a) for a in wb.engine.adapters) or "none"
    return (f"### GLM support workbench\nModel **{wb.loaded.describe()}** · adapters: {adapters} · "
            f"batch ≤ {wb.engine.config.max_batch_size}")


def build_demo(wb: Workbench) -> gr.Blocks:
    with gr.Blocks(title="GLM support workbench") as demo:
        header = gr.Markdown(header_markdown(wb), elem_id="wb-header")
        for title, module, builder in TABS:
            if importlib.util.find_spec(f"workbench.ui.{module}") is None:
                continue
            build = getattr(importlib.import_module(f"workbench.ui.{module}"), builder)
            with gr.Tab(title, elem_id=f"tab-{module}") as tab:
                build(wb, tab)
            tab.select(lambda: header_markdown(wb), None, header)
    return demo


def launch_kwargs() -> dict:
    return {"css": CSS, "theme": gr.themes.Soft()}
