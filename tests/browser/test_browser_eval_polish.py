"""The Evaluate tab as a product owner reads it at 1400x1000: nothing empty drawn before a run,
charts only with data, titled columns that fit, one progress bar, refusals that keep the
results, adapter cards after a full run, and exports that clean up after themselves."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from workbench.adapters.registry import Registry

pytestmark = pytest.mark.browser

# Counts visible progress bars every 25 ms until read back: a bar drawn over any output counts.
WATCH_PROGRESS = """() => { window.__maxBars = 0; window.__watch = setInterval(() => {
  const bars = [...document.querySelectorAll('.progress-bar')].filter(e => e.offsetParent);
  window.__maxBars = Math.max(window.__maxBars, bars.length); }, 25); }"""
TINY_SUITE = {"name": "tiny-verdicts", "task": "verdict", "grounding": "none",
              "system_prompt": "Decide returns.", "prompt_template": "({lang_name}) {text}",
              "scorers": ["verdict", "deflection"], "metrics": ["accuracy", "resolution_rate"],
              "max_new_tokens": 4}
TINY_ITEMS = [{"id": f"t{i}", "lang": lang, "text": text,
               "expected": {"eligible": True, "days": 14}}
              for i, (lang, text) in enumerate([("en", "Can I return it?"),
                                                 ("de", "Kann ich zurückgeben?"),
                                                 ("es", "¿Puedo devolverlo?")])]


def open_tab(page) -> None:
    page.get_by_role("tab", name="Evaluate").click()
    page.locator("#eval-run").wait_for()


def start_run(page, suite: str, limit: int, variants: tuple[str, ...] = ("base",)) -> None:
    page.locator("#eval-suites").get_by_label(suite, exact=False).check()
    boxes = page.locator("#eval-variants")
    for label in variants:
        boxes.get_by_label(label, exact=True).check()
    field = page.locator("#eval-limit input").first
    field.fill(str(limit))
    field.press("Tab")
    page.locator("#eval-run").click()


def wait_for_run(page) -> str:
    """Waits for the first run's line in the status, with its progress bar gone."""
    page.locator("#eval-status").get_by_text("answers,").wait_for(timeout=180_000)
    page.wait_for_function("() => !document.querySelector('#eval-status .progress-bar')",
                           timeout=180_000)
    return page.locator("#eval-status").inner_text()


def headers(page, elem_id: str) -> list[str]:
    return [h.strip() for h in page.locator(f"#{elem_id} thead th").all_inner_texts()]


def test_before_a_run_no_empty_table_chart_or_file_box_is_drawn(page) -> None:
    open_tab(page)
    tab = page.locator("#tab-evaluate_tab")
    tab.locator("#eval-limit").wait_for()
    for table in tab.locator("table").all():
        if table.is_visible():
            cells = [c.strip() for c in table.locator("th").all_inner_texts()]
            assert cells[:3] != ["1", "2", "3"], cells
    assert tab.locator(".js-plotly-plot").count() == 0 or not any(
        p.is_visible() for p in tab.locator(".js-plotly-plot").all())
    for elem in ("eval-table", "eval-table-latency", "eval-table-lang", "eval-chart-lang",
                 "eval-chart-region", "eval-chart-latency", "eval-chart-cdf", "eval-diff",
                 "eval-variant-diff", "eval-download"):
        assert not page.locator(f"#{elem}").is_visible(), elem


def test_run_without_regions_titles_columns_and_hides_the_region_chart(page) -> None:
    open_tab(page)
    start_run(page, "multilingual-intents", 4)
    status = wait_for_run(page)
    assert "answers, finished" in status and "adapter cards are left as they were" in status
    page.locator("#eval-chart-lang .js-plotly-plot").wait_for()
    page.locator("#eval-chart-cdf .js-plotly-plot").wait_for()
    assert not page.locator("#eval-chart-region").is_visible()  # intents have no region
    scores, latency = headers(page, "eval-table"), headers(page, "eval-table-latency")
    assert {"Suite", "Variant", "Items", "Accuracy", "Macro-F1", "Resolution rate",
            "Acc (log-lik.)", "Acc norm (log-lik.)"} <= set(scores), scores
    assert {"Latency P50", "TTFT P95", "Tokens/s"} <= set(latency), latency
    shown = page.locator("#tab-evaluate_tab").inner_text()
    for machine in ("ttft_p50_ms", "resolution_rate", "acc_norm", "macro_f1", "__base__"):
        assert machine not in shown, machine
    assert "base" in page.locator("#eval-table").inner_text()
    # The latency table fits: its last column ends inside the table's frame, not past it.
    frame = page.locator("#eval-table-latency .table-wrap, #eval-table-latency table").first
    last = page.locator("#eval-table-latency thead th").last
    assert last.bounding_box()["x"] + last.bounding_box()["width"] <= (
        frame.bounding_box()["x"] + frame.bounding_box()["width"] + 1)
    assert last.bounding_box()["x"] + last.bounding_box()["width"] <= 1400


def test_progress_shows_once_and_a_refusal_keeps_the_results(page) -> None:
    open_tab(page)
    start_run(page, "multilingual-intents", 3)
    wait_for_run(page)
    page.locator("#eval-table").wait_for()
    # A second run, with every table and chart on screen: still one progress bar.
    page.evaluate(WATCH_PROGRESS)
    field = page.locator("#eval-limit input").first
    field.fill("6")
    field.press("Tab")
    page.locator("#eval-run").click()
    page.wait_for_function("() => window.__maxBars >= 1", timeout=60_000)  # the bar showed
    page.locator("#eval-status").get_by_text("6/6 answers").wait_for(timeout=180_000)
    page.wait_for_function("() => !document.querySelector('#eval-status .progress-bar')",
                           timeout=180_000)
    assert page.evaluate("() => { clearInterval(window.__watch); return window.__maxBars; }") == 1
    before = page.locator("#eval-table").inner_text()
    page.locator("#eval-suites").get_by_label("multilingual-intents", exact=False).uncheck()
    page.locator("#eval-run").click()
    page.locator(".toast-body").filter(has_text="Pick at least one suite.").wait_for()
    page.wait_for_timeout(500)
    assert page.locator("#eval-table").is_visible()
    assert page.locator("#eval-table").inner_text() == before
    assert page.locator("#tab-evaluate_tab").get_by_text("Error", exact=True).count() == 0


def test_full_run_records_cards_and_exports_are_served_after_cleanup(
        page, workbench, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from workbench.ui import evaluate_tab

    suites = tmp_path / "eval_sets"
    folder = suites / TINY_SUITE["name"]
    folder.mkdir(parents=True)
    (folder / "suite.yaml").write_text(yaml.safe_dump(TINY_SUITE), encoding="utf-8")
    (folder / "items.jsonl").write_text("\n".join(json.dumps(i, ensure_ascii=False)
                                                  for i in TINY_ITEMS) + "\n", encoding="utf-8")
    monkeypatch.setattr("workbench.eval.suite.eval_sets_root", lambda: suites)
    monkeypatch.setattr(evaluate_tab, "EXPORT_ROOT", tmp_path / "exports")
    open_tab(page)  # opening the tab lists the suites again

    start_run(page, "tiny-verdicts", 2, ("a1@v1",))  # a sample: the card stays as it was
    assert "adapter cards are left as they were" in wait_for_run(page)
    assert "eval" not in Registry().resolve("a1@v1").card

    field = page.locator("#eval-limit input").first
    field.fill("0")
    field.press("Tab")
    page.locator("#eval-run").click()
    page.locator("#eval-status").get_by_text("recorded on the card of").wait_for(timeout=180_000)
    status = page.locator("#eval-status").inner_text()
    assert "a1@v1" in status.split("recorded on the card of")[1] and "base" not in status.split(
        "recorded on the card of")[1]
    entries = Registry().resolve("a1@v1").card["eval"]
    (entry,) = entries.values()
    assert entry["suite"] == "tiny-verdicts" and entry["n"] == 3 and entry["run_id"] in status

    page.locator("#eval-export-csv").click()
    link = page.locator("#eval-download a").first
    link.wait_for(timeout=60_000)
    assert len(list((tmp_path / "exports").iterdir())) == 1
    shutil.rmtree(tmp_path / "exports")  # the tab's own copy is gone: Gradio still serves its own
    got = page.request.get(link.get_attribute("href"))
    assert got.ok and "variant_label" in got.text().splitlines()[0]


def test_exports_keep_only_the_newest_folders(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from workbench.ui import evaluate_tab

    monkeypatch.setattr(evaluate_tab, "EXPORT_ROOT", tmp_path / "exports")
    made = [evaluate_tab._out_dir() for _ in range(evaluate_tab.KEEP_EXPORTS + 4)]
    left = sorted((tmp_path / "exports").iterdir())
    assert len(left) == evaluate_tab.KEEP_EXPORTS
    assert made[-1] in left and made[0] not in left
