"""Builds the Gradio app around a running Workbench."""
from __future__ import annotations

from collections.abc import Callable

import gradio as gr

from workbench.service.workbench import Workbench
from workbench.ui.adapters_tab import build_adapters_tab
from workbench.ui.chat_tab import build_chat_tab
from workbench.ui.evaluate_tab import build_evaluate_tab
from workbench.ui.monitor_tab import build_monitor_tab

# (tab title, element id, builder); imported explicitly so a broken tab fails loudly.
TABS: tuple[tuple[str, str, Callable[[Workbench, gr.Tab], None]], ...] = (
    ("Chat", "chat_tab", build_chat_tab),
    ("Evaluate", "evaluate_tab", build_evaluate_tab),
    ("Adapters", "adapters_tab", build_adapters_tab),
    ("Monitor", "monitor_tab", build_monitor_tab),
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
        for title, module, build in TABS:
            with gr.Tab(title, elem_id=f"tab-{module}") as tab:
                build(wb, tab)
            tab.select(lambda: header_markdown(wb), None, header)
    return demo


def launch_kwargs() -> dict:
    return {"css": CSS, "theme": gr.themes.Soft()}
