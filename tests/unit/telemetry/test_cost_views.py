"""The cost per 1,000 requests in the Monitor tab and in ``workbench top``."""
from __future__ import annotations

import pytest
from click.testing import CliRunner

from workbench.cli import main
from workbench.cli import monitor_cmds
from workbench.cli.monitor_cmds import TopRow, render, top_frames
from workbench.engine import Request, RequestMetrics, RequestStatus
from workbench.telemetry.collector import RequestRecord, Telemetry
from workbench.ui.monitor_tab import cost_markdown, refresh

NOW = 50_000.0


def record(at: float) -> RequestRecord:
    return RequestRecord(at, "base", "", "stop", 0.01, 0.1, 1.0, 100, 0, 10, 4, running=1, waiting=0,
                         rss_bytes=1000)


def telemetry(in_window: int) -> Telemetry:
    """``in_window`` requests in the last 5 minutes, and one long before (so the window is full)."""
    tel = Telemetry("tiny", clock=lambda: NOW)
    tel.add(record(NOW - 4000))
    for i in range(in_window):
        tel.add(record(NOW - 290 + i))
    return tel


def test_monitor_cost_is_price_times_window_hours_over_requests(monkeypatch) -> None:
    monkeypatch.setenv("WORKBENCH_PRICE_PER_HOUR", "2.5")
    text = cost_markdown(telemetry(30), 300.0, "5 min")
    # 2.5 per hour x 300/3600 h / 30 requests x 1000 = 6.94
    assert f"{2.5 * 300 / 3600 / 30 * 1000:.3g}" == "6.94"
    assert "**Cost** · cost per 1,000 requests over the last 5 min: 6.94 at 2.5/h (30 requests" in text


def test_monitor_cost_is_na_without_requests_and_absent_without_a_price(monkeypatch) -> None:
    monkeypatch.setenv("WORKBENCH_PRICE_PER_HOUR", "2.5")
    assert "n/a (no requests)" in cost_markdown(telemetry(0), 300.0, "5 min")
    monkeypatch.delenv("WORKBENCH_PRICE_PER_HOUR")
    assert cost_markdown(telemetry(30), 300.0, "5 min") == ""
    monkeypatch.setenv("WORKBENCH_PRICE_PER_HOUR", "cheap")
    assert "WORKBENCH_PRICE_PER_HOUR must be a positive price" in cost_markdown(telemetry(3), 300.0, "5 min")


def test_the_monitor_tab_shows_the_cost_line(workbench, monkeypatch) -> None:
    monkeypatch.setenv("WORKBENCH_PRICE_PER_HOUR", "3")
    workbench.engine.generate([{"role": "user", "content": "Where is my order?"}], None, 2)
    live = refresh(workbench, "15 min")[2]
    assert "**Cost** · cost per 1,000 requests over the last 15 min:" in live and "at 3/h (1 requests" in live
    assert live.index("**Cost**") < live.index("Updated")


def test_top_renders_the_cost_of_the_whole_row() -> None:
    rows = [TopRow("all", 30, 0.1, 1.0, (None,) * 3, (None,) * 3, None),
            TopRow("base", 30, 0.1, 1.0, (None,) * 3, (None,) * 3, None)]
    assert "cost per 1,000 requests over 5m: 6.94 at 2.5/h" in render(rows, None, "5m", 300.0, 2.5)
    first = [TopRow("all", 30, None, None, (None,) * 3, (None,) * 3, None)]
    assert "cost per 1,000 requests over 5m: n/a" in render(first, None, "5m", None, 2.5)
    assert "cost per 1,000" not in render(rows, None, "5m", 300.0)


def observe(tel: Telemetry, n: int) -> None:
    for _ in range(n):
        req = Request([{"role": "user", "content": "hi"}], metrics=RequestMetrics(
            ttft_ms=100, total_ms=500, prompt_tokens=10, completion_tokens=5), finish_reason="length")
        req.status = RequestStatus.FINISHED
        tel.observe(req, None, None)


def test_top_frames_carry_the_cost_between_two_scrapes(monkeypatch) -> None:
    tel = Telemetry("tiny")
    observe(tel, 2)
    scrapes = iter([tel.exposition().decode(), None])

    def fetch(server: str) -> str:
        text = next(scrapes)
        if text is None:  # six more requests between the two scrapes
            observe(tel, 6)
            text = tel.exposition().decode()
        return text

    monkeypatch.setattr(monitor_cmds, "fetch_metrics", fetch)
    frames = [data for _, data in top_frames("http://x", "5m", 0.01, 2, price_per_hour=2.5)]
    assert frames[0]["cost_per_1k"] is None  # one scrape: no rate yet
    every = next(v for v in frames[1]["variants"] if v["variant"] == "all")
    assert every["requests"] == 6
    assert frames[1]["cost_per_1k"] == pytest.approx(2.5 / (every["requests_per_s"] * 3600) * 1000)


def test_top_refuses_a_bad_price(monkeypatch) -> None:
    monkeypatch.setenv("WORKBENCH_PRICE_PER_HOUR", "-2")
    result = CliRunner().invoke(main, ["top", "--server", "http://127.0.0.1:9", "--iterations", "1"])
    assert result.exit_code != 0 and "WORKBENCH_PRICE_PER_HOUR must be a positive price" in result.output
