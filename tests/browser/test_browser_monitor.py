"""The Monitor tab in a real browser shows the served traffic's figures."""
from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser


def test_monitor_tab_shows_figures_after_requests(page, workbench) -> None:
    msgs = [{"role": "user", "content": "Where is my order?"}]
    reqs = [workbench.engine.submit(msgs, adapter, max_new_tokens=6)
            for adapter in (None, "a1", "a2", "a1", None)]
    for r in reqs:
        assert r.done_event.wait(60)
    page.get_by_role("tab", name="Monitor").click()
    page.wait_for_function(
        "() => (document.getElementById('monitor-table')?.innerText || '').includes('a1@v1')")
    table = page.locator("#monitor-table").inner_text()
    assert "a2@v1" in table and "base" in table and "all" in table
    live = page.locator("#monitor-live").inner_text()
    assert "a1@v1" in live and "process memory" in live
    plot = page.locator("#monitor-plot .js-plotly-plot")
    plot.wait_for()
    for title in ("Requests/s", "TTFT (s)", "Prefix-cache hit rate", "Process memory (MiB)"):
        assert page.locator("#monitor-plot").get_by_text(title).count() >= 1
    # The timer redraws: a later request shows up without a click.
    workbench.engine.generate(msgs, "a2", max_new_tokens=4)
    page.wait_for_function(
        "() => /a2@v1\\s+2\\s/.test(document.getElementById('monitor-table')?.innerText || '')",
        timeout=30_000)
