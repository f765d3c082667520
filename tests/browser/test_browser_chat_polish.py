"""What a Chat tab user relies on: a refusal never hides the conversation, one name for the
base, examples that fill the box, a region that follows the language, the Adapters tab's
right-pane default applied, and limits said under the answer."""
from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser
PageTimeout = pytest.importorskip("playwright.sync_api").TimeoutError

ERROR_BADGES = "() => [...document.querySelectorAll('.error')].filter(e => e.offsetParent).length"


def ask(page, text: str) -> None:
    page.locator("#chat-input textarea").fill(text)
    page.locator("#chat-send").click()
    page.wait_for_function(
        "() => ['chat-left-stats', 'chat-right-stats'].every("
        "id => (document.getElementById(id)?.innerText || '').includes('tok/s'))")


def type_into_slider(page, elem: str, value: str, tries: int = 5) -> None:
    """Type a number into a slider's box until the slider itself shows it, as a user retypes a
    value the page dropped: on a loaded machine the page may still be mounting when the first
    keystrokes land, and the bar then keeps its default."""
    field = page.locator(f"{elem} input[type=number]")
    bar = f"() => document.querySelector('{elem} input[type=range]').value === '{value}'"
    for _ in range(tries):
        field.fill(value)
        field.press("Enter")
        try:
            page.wait_for_function(bar, timeout=5_000)
            return
        except PageTimeout:  # the page dropped the keystrokes; type them again
            continue
    page.wait_for_function(bar)


def test_refused_send_keeps_the_conversation_visible(page) -> None:
    ask(page, "Where is my order? It has not arrived.")
    before = page.locator("#chat-left .message.bot").last.inner_text()
    page.locator("#chat-input textarea").fill("   ")
    page.locator("#chat-send").click()
    page.get_by_text("Type a customer question first.").wait_for()
    page.wait_for_timeout(500)
    assert page.evaluate(ERROR_BADGES) == 0
    assert page.locator("#chat-left .message.bot").last.inner_text() == before
    assert "tok/s" in page.locator("#chat-right-stats").inner_text()
    assert page.locator("#chat-input textarea").is_visible()


def test_base_is_called_base_on_every_tab(page) -> None:
    ask(page, "Can I return shoes after 20 days?")
    texts = [page.locator("body").inner_text()]
    for tab in ("Evaluate", "Adapters", "Monitor"):
        page.get_by_role("tab", name=tab).click()
        page.wait_for_timeout(1500)
        texts.append(page.locator("body").inner_text())
    assert not [t for t in texts if "__base__" in t]
    assert "Base model" in texts[0]


def test_example_question_fills_the_message_box(page) -> None:
    page.locator("#chat-example input").click()
    option = page.get_by_role("option").first
    question = option.inner_text().strip()
    option.click()
    page.wait_for_function(
        "q => document.querySelector('#chat-input textarea').value.trim() === q", arg=question)


def test_language_suggests_its_region(page) -> None:
    page.locator("#chat-lang input").click()
    page.get_by_role("option", name="日本語 (Japanese)").click()
    page.wait_for_function(
        "() => document.querySelector('#chat-region input').value.startsWith('JP')")


def test_right_pane_default_from_adapters_tab_applies_in_chat(page, workbench) -> None:
    assert page.locator("#chat-variant input").input_value() == "a1@v1"
    page.get_by_role("tab", name="Adapters").click()
    page.locator("#adapters-ref input").fill("a2@v1")
    page.locator("#adapters-ref input").press("Enter")
    page.locator("#adapters-default").click()
    page.wait_for_function("() => document.getElementById('adapters-status').innerText.includes('a2')")
    page.get_by_role("tab", name="Chat").click()
    page.wait_for_function("() => document.querySelector('#chat-variant input').value === 'a2@v1'")
    page.wait_for_function(
        "() => document.getElementById('chat-right-title').innerText.includes('a2@v1')")


def test_an_answer_cut_at_its_limit_says_so(page) -> None:
    page.get_by_text("Generation settings").click()
    type_into_slider(page, "#chat-max-new", "16")
    ask(page, "Please explain your whole return policy in detail.")
    stats = page.locator("#chat-left-stats").inner_text()
    assert "· 16 tokens" in stats, stats  # a random tiny model runs to its limit
    assert "cut at its limit of 16 tokens" in stats
