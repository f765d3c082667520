"""The Adapters tab in a real browser: load a registered version, then chat with it."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser


def test_load_from_adapters_tab_then_pick_it_in_chat(page, workbench, make_adapter) -> None:
    root = Path(os.environ["WORKBENCH_ADAPTERS"])
    make_adapter(workbench.loaded, "a3", "v1", seed=3, root=root)  # registered, not served
    assert "a3" not in workbench.engine.adapters
    page.get_by_role("tab", name="Adapters").click()
    ref = page.locator("#adapters-ref input")
    ref.click()
    page.get_by_role("option", name="a3@v1").click()
    page.locator("#adapters-load").click()
    page.wait_for_function(
        "() => (document.getElementById('adapters-status')?.innerText || '').includes('a3@v1')")
    assert "a3" in workbench.engine.adapters

    page.get_by_role("tab", name="Chat").click()
    page.locator("#chat-variant input").click()
    page.get_by_role("option", name="a3", exact=True).click()
    page.locator("#chat-input textarea").fill("Where is my order?")
    page.locator("#chat-send").click()
    page.wait_for_function(
        "() => (document.getElementById('chat-right-stats')?.innerText || '').includes('tok/s')")
    assert "a3@v1" in page.locator("#chat-right").inner_text()  # pane label names the version
    variants = {t["variant"] for t in workbench.chatlog.turns()}
    assert variants == {"__base__", "a3@v1"}
