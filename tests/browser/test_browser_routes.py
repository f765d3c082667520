"""Customer view (Chat tab) and the route view (Adapters tab) in a real browser."""
from __future__ import annotations

import time

import pytest

from workbench.routing.routes import parse_arms

from workbench.routing.store import RouteStore

pytestmark = pytest.mark.browser


@pytest.fixture
def route(tmp_home) -> str:
    RouteStore().create("support", parse_arms("a1@v1=50,a2@v1=50"))
    return "support"


def _wait(cond, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_customer_view_answers_through_the_route(route, page, workbench) -> None:
    page.get_by_label("Customer view").check()
    page.locator("#chat-customer").wait_for()
    assert not page.locator("#chat-left").is_visible()
    page.locator("#chat-route input").click()
    page.get_by_role("option", name="support").click()
    for question in ("Where is my order?", "Can I return shoes?"):
        page.locator("#chat-customer-input textarea").fill(question)
        page.locator("#chat-customer-send").click()
        page.wait_for_function(
            "n => (document.getElementById('chat-customer-stats')?.innerText || '').includes('arm')"
            " && document.querySelectorAll('#chat-customer-bot .message.bot').length >= n",
            arg=1 if question.startswith("Where") else 2)
    _wait(lambda: len(workbench.chatlog.route_turns("support")) == 2)
    turns = workbench.chatlog.route_turns("support")
    assert len({t["arm"] for t in turns}) == 1  # one browser session keeps one arm
    page.wait_for_function(
        "arm => (document.getElementById('chat-customer-stats')?.innerText || '').includes(arm)",
        arg=turns[0]["arm"])
    page.locator("#chat-customer-resolved").get_by_label("yes").check()
    _wait(lambda: workbench.chatlog.route_turns("support")[-1]["resolved"] == 1)


def test_route_view_shows_the_arms(route, page) -> None:
    page.get_by_role("tab", name="Adapters").click()
    page.locator("#adapters-routes").click()
    page.locator("#routes-pick input").click()
    page.get_by_role("option", name="support").click()
    page.wait_for_function(
        "() => (document.getElementById('routes-summary')?.innerText || '').includes('incumbent')")
    table = page.locator("#routes-table").inner_text()
    assert "a1@v1" in table and "a2@v1" in table and "50%" in table
    assert "Promote refused" in page.locator("#routes-summary").inner_text()
