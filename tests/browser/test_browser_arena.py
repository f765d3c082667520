"""The blind arena in a real browser: ask, vote, see the names, read the leaderboard."""
from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser


def test_blind_vote_reveals_names_and_reaches_the_leaderboard(page, workbench) -> None:
    page.locator("#arena").get_by_text("Blind arena: two anonymous variants").click()
    page.locator("#arena-input textarea").fill("Mein Paket ist nicht angekommen, IBAN DE89370400440532013000")
    assert page.locator("#arena-vote-tie").is_disabled()  # nothing to vote on yet
    page.locator("#arena-ask").click()
    page.locator("#arena-a .message.bot").first.wait_for()
    page.locator("#arena-b .message.bot").first.wait_for()
    page.wait_for_function("() => !document.querySelector('#arena-vote-tie').disabled")
    page.locator("#arena-vote-tie").click()
    page.wait_for_function(
        "() => (document.getElementById('arena-reveal')?.innerText || '').includes('A was')")
    assert page.locator("#arena-vote-a").is_disabled()  # one vote per round
    (row,) = workbench_votes()
    assert row["vote"] == "tie" and row["variant_a"] != row["variant_b"]
    assert "DE89370400440532013000" not in row["question"]
    reveal = page.locator("#arena-reveal").inner_text()
    assert row["variant_a"] in reveal and row["variant_b"] in reveal

    page.get_by_role("tab", name="Evaluate").click()
    page.locator("#arena-board").get_by_text("Blind arena leaderboard").click()
    page.locator("#arena-board-refresh").click()
    page.wait_for_function(
        "() => (document.getElementById('arena-board-table')?.innerText || '').includes('95% CI')")
    table = page.locator("#arena-board-table").inner_text()
    assert row["variant_a"] in table and row["variant_b"] in table


def workbench_votes() -> list[dict]:
    from workbench.eval.arena import ArenaStore

    return ArenaStore().votes().to_dict(orient="records")
