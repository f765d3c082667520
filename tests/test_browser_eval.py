"""The Evaluate tab in a real browser: run a 5-item suite on two variants and see the charts."""
from __future__ import annotations

import pytest

from workbench.eval.store import EvalStore

pytestmark = pytest.mark.browser


def test_run_small_suite_and_see_charts(page, workbench) -> None:
    page.get_by_role("tab", name="Evaluate").click()
    page.locator("#eval-suites").get_by_label("multilingual-intents", exact=False).check()
    variants = page.locator("#eval-variants")
    variants.get_by_label("base", exact=True).check()
    variants.get_by_label("a1@v1", exact=True).check()
    limit = page.locator("#eval-limit input").first
    limit.fill("5")
    limit.press("Tab")
    page.locator("#eval-run").click()
    # A plotly chart renders once the run is stored.
    page.locator("#eval-chart-lang .js-plotly-plot").wait_for(timeout=120_000)
    page.locator("#eval-chart-latency .js-plotly-plot").wait_for()
    table = page.locator("#eval-table").inner_text()
    assert "a1@v1" in table and "base" in table, table
    runs = EvalStore().list_runs(10)
    assert len(runs) == 1 and runs[0].status == "finished"
    frame = EvalStore().results_frame(runs[0].run_id)
    assert len(frame) == 10  # 5 items x 2 variants, each stored
