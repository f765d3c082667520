"""The Adapters tab in a real browser: load a registered version, then chat with it."""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser
TOKEN = "browser-admin-token"


@pytest.fixture(autouse=True)
def admin_token(monkeypatch) -> None:
    """Administration needs a token; set before the workbench and the page are built."""
    monkeypatch.setenv("WORKBENCH_ADMIN_TOKEN", TOKEN)


def test_load_from_adapters_tab_then_pick_it_in_chat(page, workbench, make_adapter) -> None:
    root = Path(os.environ["WORKBENCH_ADAPTERS"])
    from workbench.models.catalog import load_model

    # Made on a separate base: the served model must not be wrapped a second time.
    make_adapter(load_model("tiny-glm"), "a3", "v1", seed=3, root=root)  # registered, not served
    assert "a3" not in workbench.engine.adapters
    page.get_by_role("tab", name="Adapters").click()
    page.locator("#adapters-token input").fill(TOKEN)  # asked once per session
    page.locator("#adapters-unlock").click()
    page.wait_for_function(
        "() => (document.getElementById('adapters-status')?.innerText || '').includes('unlocked')")
    ref = page.locator("#adapters-ref input")
    ref.click()
    page.get_by_role("option", name="a3@v1").click()
    page.locator("#adapters-load").click()
    page.wait_for_function(
        "() => (document.getElementById('adapters-status')?.innerText || '').includes('a3@v1')")
    assert "a3" in workbench.engine.adapters

    page.get_by_role("tab", name="Chat").click()
    page.locator("#chat-variant input").click()
    # The picker names a variant "a3" or, with its version, "a3@v1".
    page.get_by_role("option", name=re.compile(r"^a3(@v1)?$")).click()
    page.locator("#chat-input textarea").fill("Where is my order?")
    page.locator("#chat-send").click()
    page.wait_for_function(
        "() => (document.getElementById('chat-right-stats')?.innerText || '').includes('tok/s')")
    assert "a3@v1" in page.locator("#chat-right-title").inner_text()  # the pane's title names the version
    variants = {t["variant"] for t in workbench.chatlog.turns()}
    assert variants == {"base", "a3@v1"}  # the log names the base as users do
