"""The Adapters tab as a user sees it: the registry table fits a laptop screen with short,
one-line headers, scrolls sideways on a phone instead of breaking words, shows one eval
figure per suite, and "Set as right-pane default" says what it does in Chat's terms."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from workbench.service.lifecycle import AdapterRow

pytestmark = pytest.mark.browser

TABLE = """() => {
  const t = document.getElementById('adapters-table');
  const viewport = t.querySelector('.virtual-table-viewport') || t;
  const heads = [...t.querySelectorAll('thead th span.header')].map(s => {
    const lh = parseFloat(getComputedStyle(s).lineHeight) || 20;
    return {text: s.innerText.trim(), lines: Math.round(s.getBoundingClientRect().height / lh),
            right: s.closest('th').getBoundingClientRect().right};
  });
  // Shown rows only (the table also holds a hidden sizing row).
  const rows = [...t.querySelectorAll('.virtual-row[role=row]')].map(r =>
    [...r.querySelectorAll('[role=gridcell]')].map(c => c.innerText.trim()));
  return {heads, rows, scroll: viewport.scrollWidth, width: viewport.clientWidth,
          overflowX: getComputedStyle(viewport).overflowX,
          page: document.scrollingElement.scrollWidth, inner: innerWidth};
}"""


def open_adapters(page) -> None:
    tab, more = page.get_by_role("tab", name="Adapters"), page.get_by_role("button", name="More tabs")
    tab.or_(more).first.wait_for()  # the tab bar has been laid out
    if tab.is_visible():
        tab.click()
    else:  # a phone: the tabs that do not fit are under "More tabs"
        more.click()
        page.locator(".overflow-dropdown button", has_text="Adapters").click()
    page.wait_for_function(
        "() => document.querySelectorAll('#adapters-table .virtual-row').length >= 3")


def status(page) -> str:
    return page.locator("#adapters-status").inner_text()


def set_default(page, ref: str, expected: str) -> None:
    page.locator("#adapters-ref input").fill(ref)
    page.locator("#adapters-ref input").press("Enter")
    page.locator("#adapters-default").click()
    page.wait_for_function(
        "(want) => (document.getElementById('adapters-status')?.innerText || '').includes(want)",
        arg=expected)


@pytest.fixture
def carded(workbench, make_adapter):
    """a1@v1 carries eval results for two suites; a long-named version is registered too."""
    from workbench.models.catalog import load_model

    workbench.registry.set_eval_summary("a1@v1", [
        {"suite": "multilingual-intents", "suite_hash": "ab" * 32, "accuracy": 0.2167,
         "resolution_rate": 0.2167, "n": 180},
        {"suite": "regional-policy", "suite_hash": "cd" * 32, "accuracy": 0.4,
         "resolution_rate": 0.4, "n": 72}])
    make_adapter(load_model("tiny-glm"), "returns-multilingual-eu", "v12", seed=5,
                 root=Path(os.environ["WORKBENCH_ADAPTERS"]))
    return workbench


def test_table_fits_a_laptop_and_default_speaks_of_chat(page, carded) -> None:
    open_adapters(page)
    table = page.evaluate(TABLE)
    assert [h["text"] for h in table["heads"]] == list(AdapterRow.TABLE_HEADERS)
    assert all(h["lines"] == 1 for h in table["heads"]), table["heads"]  # no "Ra / nk"
    assert table["heads"][-1]["right"] <= table["inner"]  # every column on screen
    assert table["scroll"] <= table["width"] + 1, "the table needs sideways scrolling at 1400"
    rows = {(r[0], r[1]): r for r in table["rows"]}
    a1 = rows[("a1", "v1")]
    assert a1[2] == "4" and a1[3] == "q v"
    assert a1[4] == "yes · chat default" and rows[("a2", "v1")][4] == "yes"
    assert a1[5] == "intents 21.7% · policy 40%"
    assert rows[("returns-multilingual-eu", "v12")][4] == ""  # registered, not served

    set_default(page, "a2@v1", "Chat's right pane now defaults to a2 (applies when you open "
                               "the Chat tab).")
    assert carded.default_adapter == "a2"
    rows = {(r[0], r[1]): r for r in page.evaluate(TABLE)["rows"]}
    assert rows[("a2", "v1")][4] == "yes · chat default" and rows[("a1", "v1")][4] == "yes"
    set_default(page, "base", "Chat's right pane now defaults to base")
    assert carded.default_adapter is None
    tab_text = page.locator("#adapters-status").inner_text() + page.locator("#adapters-table").inner_text()
    assert "__base__" not in tab_text and "Chat's right pane: base" in status(page)


def test_table_scrolls_sideways_on_a_phone(page, carded) -> None:
    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    open_adapters(page)
    table = page.evaluate(TABLE)
    assert table["page"] <= table["inner"] + 1, "the page itself scrolls sideways"
    assert all(h["lines"] == 1 for h in table["heads"]), table["heads"]
    assert table["scroll"] > table["width"] and table["overflowX"] in ("auto", "scroll")
