"""Monitor figures: buckets of the telemetry window, and `workbench top` reading /metrics."""
from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from click.testing import CliRunner

from workbench.cli import main
from workbench.cli.monitor_cmds import histogram_quantile, parse_metrics, scrape_rows
from workbench.engine import Request, RequestMetrics, RequestStatus
from workbench.telemetry.collector import Telemetry
from workbench.ui.monitor_tab import PANELS, bucket_series, monitor_figure


class Clock:
    def __init__(self, t: float = 1_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def observe(tel: Telemetry, n: int, adapter: str | None, version: str | None, ttft_ms: float = 200.0) -> None:
    for i in range(n):
        m = RequestMetrics(queue_ms=5, ttft_ms=ttft_ms, total_ms=ttft_ms + 800, prompt_tokens=100,
                           cached_tokens=40, completion_tokens=20, batch_size=2)
        req = Request([{"role": "user", "content": "hi"}], adapter=adapter, metrics=m, finish_reason="length")
        req.status = RequestStatus.FINISHED
        tel.observe(req, adapter, version)


def test_histogram_quantile_interpolates_like_prometheus() -> None:
    buckets = [(0.1, 0.0), (0.5, 10.0), (1.0, 20.0), (float("inf"), 20.0)]
    assert histogram_quantile(0.5, buckets) == pytest.approx(0.5)
    assert histogram_quantile(0.25, buckets) == pytest.approx(0.3)
    assert histogram_quantile(0.95, buckets) == pytest.approx(0.95)
    assert histogram_quantile(0.5, [(1.0, 0.0), (float("inf"), 0.0)]) is None
    assert histogram_quantile(0.99, [(1.0, 1.0), (float("inf"), 5.0)]) == 1.0  # past the last bound


def test_buckets_count_rates_over_their_width_per_variant() -> None:
    clock = Clock()
    tel = Telemetry("tiny", clock=clock)
    clock.t -= 250  # 6 base requests early in the 5-minute window, 4 adapter ones just now
    observe(tel, 6, None, None)
    clock.t += 250
    observe(tel, 4, "a1", "v2", ttft_ms=900)
    series = bucket_series(tel.records(300), 300, clock(), buckets=30)  # 10 s buckets
    assert set(series) == {"all", "base", "a1@v2"}
    assert [b.requests_per_s for b in series["base"]][5] == pytest.approx(0.6)
    assert series["a1@v2"][-1].requests_per_s == pytest.approx(0.4)
    assert series["a1@v2"][-1].tokens_per_s == pytest.approx(8.0)
    assert series["all"][-1].stats.ttft_p50_s == pytest.approx(0.9)
    assert series["all"][-1].stats.prefix_hit_rate == pytest.approx(0.4)
    assert sum(b.stats.requests for b in series["all"]) == 10
    fig = monitor_figure(series, "5 min")
    titles = [a.text for a in fig.layout.annotations]
    assert titles == list(PANELS)
    assert {t.name for t in fig.data} >= {"base", "a1@v2", "TTFT p95", "e2e p99", "running", "mean batch"}


@pytest.fixture
def metrics_server() -> Iterator[tuple[str, Telemetry]]:
    """A /metrics endpoint serving one Telemetry, as the app and `workbench serve` do."""
    tel = Telemetry("tiny")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            body = tel.exposition() if self.path == "/metrics" else b""
            self.send_response(200 if body else 404)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", tel
    server.shutdown()


def test_top_reads_the_servers_metrics(metrics_server) -> None:
    url, tel = metrics_server
    observe(tel, 3, None, None, ttft_ms=30)
    observe(tel, 5, "a1", "v2", ttft_ms=300)
    result = CliRunner().invoke(main, ["top", "--server", url, "--iterations", "1", "--json"])
    assert result.exit_code == 0, result.output
    frame = json.loads(result.output.strip().splitlines()[-1])
    rows = {r["variant"]: r for r in frame["variants"]}
    assert [r["variant"] for r in frame["variants"]] == ["all", "a1@v2", "base"]
    assert rows["all"]["requests"] == 8 and rows["base"]["requests"] == 3
    # TTFT 0.3 s lies in the (0.25, 0.5] bucket; 0.03 s in (0.025, 0.05].
    assert 0.25 < rows["a1@v2"]["ttft_s"][0] <= 0.5 and 0.025 < rows["base"]["ttft_s"][0] <= 0.05
    assert rows["a1@v2"]["prefix_hit_rate"] == pytest.approx(0.4)
    table = CliRunner().invoke(main, ["top", "--server", url, "--iterations", "1"])
    assert "a1@v2" in table.output and "TTFT p50/95/99" in table.output


def test_top_between_two_scrapes_counts_only_what_happened_between() -> None:
    tel = Telemetry("tiny")
    observe(tel, 4, None, None)
    before = parse_metrics(tel.exposition().decode(), 100.0)
    observe(tel, 6, None, None)
    rows = {r.variant: r for r in scrape_rows(parse_metrics(tel.exposition().decode(), 110.0), before)}
    assert rows["base"].requests == 6 and rows["base"].requests_per_s == pytest.approx(0.6)
    assert rows["base"].tokens_per_s == pytest.approx(12.0)


def test_top_says_when_no_server_answers() -> None:
    result = CliRunner().invoke(main, ["top", "--server", "http://127.0.0.1:9", "--iterations", "1"])
    assert result.exit_code != 0 and "Could not read http://127.0.0.1:9/metrics" in result.output


def test_top_shows_each_route_arm_like_the_telemetry_does() -> None:
    from workbench.cli.monitor_cmds import telemetry_rows

    tel = Telemetry("tiny")
    for version, n in (("v2", 9), ("v3", 1)):
        for _ in range(n):
            m = RequestMetrics(ttft_ms=300, total_ms=1100, prompt_tokens=10, completion_tokens=4)
            req = Request([{"role": "user", "content": "hi"}], adapter="cs", metrics=m, finish_reason="eos")
            tel.observe(req, "cs", version, "cs-support")
    observe(tel, 2, None, None)  # not routed
    scraped = {r.variant: r for r in scrape_rows(parse_metrics(tel.exposition().decode(), 1.0), None)}
    local = {r.variant: r for r in telemetry_rows(tel, 300)}
    arms = ["route cs-support: cs@v2", "route cs-support: cs@v3"]
    assert list(scraped)[-2:] == arms and set(arms) <= set(local)
    for arm, n in zip(arms, (9, 1)):
        assert scraped[arm].requests == local[arm].requests == n
        assert 1.0 < scraped[arm].e2e_s[0] <= 2.5 and local[arm].e2e_s[0] == pytest.approx(1.1)
    assert scraped["all"].requests == local["all"].requests == 12  # routed rows count once
