"""The Evaluate tab in a real browser: run a 5-item suite on two variants and see the charts."""
from __future__ import annotations

import pytest

from workbench.devtools.ui_shots import start_eval
from workbench.eval.store import EvalStore

pytestmark = pytest.mark.browser


def test_run_small_suite_and_see_charts(page, workbench) -> None:
    start_eval(page, "multilingual-intents", ["base", "a1@v1"], 5)
    # A plotly chart renders once the run is stored.
    page.locator("#eval-chart-lang .js-plotly-plot").wait_for(timeout=120_000)
    page.locator("#eval-chart-latency .js-plotly-plot").wait_for()
    table = page.locator("#eval-table").inner_text()
    assert "a1@v1" in table and "base" in table, table
    runs = EvalStore().list_runs(10)
    assert len(runs) == 1 and runs[0].status == "finished"
    frame = EvalStore().results_frame(runs[0].run_id)
    assert len(frame) == 20  # 5 items of each split (dev, test) x 2 variants, each stored
    assert set(frame["suite"]) == {"multilingual-intents:dev", "multilingual-intents:test"}
    assert "Generalization gap" in page.locator("#eval-table-splits").inner_text()
