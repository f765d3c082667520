"""The Chat tab in a real browser: one question, two streamed answers, side by side."""
from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser


def pane_text(page, pane: str) -> str:
    return page.locator(f"#chat-{pane} .message.bot").last.inner_text()


def test_two_panes_stream_answers(page, workbench) -> None:
    assert workbench.default_adapter == "a1"
    page.locator("#chat-input textarea").fill("Where is my order? It has not arrived.")
    page.locator("#chat-send").click()
    # Both panes get a bot message while the answers stream.
    page.locator("#chat-left .message.bot").first.wait_for()
    page.locator("#chat-right .message.bot").first.wait_for()
    page.wait_for_function(
        "() => ['chat-left-stats', 'chat-right-stats'].every("
        "id => (document.getElementById(id)?.innerText || '').includes('tok/s'))")
    left, right = pane_text(page, "left"), pane_text(page, "right")
    assert left.strip() and right.strip()
    assert left != right  # base vs a random non-zero adapter
    stats = page.locator("#chat-right-stats").inner_text()
    assert "TTFT" in stats and "batch" in stats
    turns = workbench.chatlog.turns()
    assert {t["pane"] for t in turns} == {"left", "right"}
    assert {t["variant"] for t in turns} == {"base", "a1@v1"}


def test_arabic_switches_panes_to_rtl(page) -> None:
    page.locator("#chat-lang input").click()
    page.get_by_role("option", name="العربية (Arabic)").click()
    page.wait_for_function(
        "() => ['chat-left', 'chat-right'].every(id => document.getElementById(id).dir === 'rtl')")
    # Back to a left-to-right language restores the direction.
    page.locator("#chat-lang input").click()
    page.get_by_role("option", name="Deutsch (German)").click()
    page.wait_for_function("() => document.getElementById('chat-left').dir !== 'rtl'")
