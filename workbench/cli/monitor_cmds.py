"""``workbench top``: the Monitor tab's figures in a terminal, from a running server's ``/metrics``.

Prometheus counters and histograms are totals since the server started, so ``top`` keeps
the scrapes it has made and reports the difference between now and the scrape one window ago
(or its first scrape, while it has run for less than the window): requests/s and tokens/s from
the counters, TTFT and end-to-end P50/P95/P99 from the histogram buckets (linear within a
bucket, as Prometheus' ``histogram_quantile``), the prefix-cache hit rate from its two counters,
and running/waiting, memory and the adapters served (with versions) from the gauges.
:func:`telemetry_rows` gives the same rows from a :class:`~workbench.telemetry.Telemetry` in
this process (exact percentiles from its ring buffer).
"""
from __future__ import annotations

import json
import math
import os
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field

import click

from workbench.errors import InputError
from workbench.telemetry.cost import cost_line, cost_per_1k, price_from_env

WINDOWS = {"5m": 300.0, "15m": 900.0, "60m": 3600.0}
ALL = "all"
HISTOGRAMS = {"ttft": "vllm:time_to_first_token_seconds", "e2e": "vllm:e2e_request_latency_seconds"}
COUNTERS = {"requests": "vllm:request_success", "tokens": "vllm:generation_tokens",
            "prefix_queries": "vllm:prefix_cache_queries", "prefix_hits": "vllm:prefix_cache_hits"}
# The same figures per A/B route arm (their own families; rows "route NAME: arm", never in all).
ROUTE_HISTOGRAMS = {"ttft": "workbench:route_time_to_first_token_seconds",
                    "e2e": "workbench:route_e2e_request_latency_seconds"}
ROUTE_COUNTERS = {"requests": "workbench:route_request_success",
                  "tokens": "workbench:route_generation_tokens"}
ROUTE_PREFIX = "route "


@dataclass
class Scrape:
    """One read of ``/metrics``, per variant (``name@version``, or ``base``)."""

    at: float
    # counter name -> variant -> total.
    counters: dict[str, dict[str, float]] = field(default_factory=dict)
    # histogram name -> variant -> [(upper bound, cumulative count)], bounds ascending.
    buckets: dict[str, dict[str, list[tuple[float, float]]]] = field(default_factory=dict)
    running: dict[str, float] = field(default_factory=dict)
    waiting: float = 0.0
    loaded: list[str] = field(default_factory=list)
    rss_bytes: float | None = None
    cuda_bytes: float | None = None


@dataclass(frozen=True)
class TopRow:
    """The figures of one variant over one window."""

    variant: str
    requests: int
    # None on a first scrape: a rate needs two.
    requests_per_s: float | None
    tokens_per_s: float | None
    ttft_s: tuple[float | None, float | None, float | None]
    e2e_s: tuple[float | None, float | None, float | None]
    prefix_hit_rate: float | None


def _variant(labels: dict[str, str]) -> str:
    if "route" in labels:
        return f"{ROUTE_PREFIX}{labels['route']}: {labels.get('arm', '')}"
    adapter, version = labels.get("adapter", ""), labels.get("adapter_version", "")
    return f"{adapter}@{version}" if version else adapter


def _family(name: str, suffix: str, families: dict[str, str]) -> str | None:
    """The figure key of a sample of one of ``families`` (``name`` ends with ``suffix``)."""
    if not name.endswith(suffix):
        return None
    base = name[:-len(suffix)]
    return next((k for k, n in families.items() if n == base), None)


def parse_metrics(text: str, at: float) -> Scrape:
    """The figures ``top`` needs out of the Prometheus text format."""
    from prometheus_client.parser import text_string_to_metric_families

    scrape = Scrape(at)
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            v, labels = _variant(s.labels), s.labels
            counter = _family(s.name, "_total", ROUTE_COUNTERS if "route" in labels else COUNTERS)
            hist = _family(s.name, "_bucket", ROUTE_HISTOGRAMS if "route" in labels else HISTOGRAMS)
            if counter is not None:
                bucket = scrape.counters.setdefault(counter, {})
                bucket[v] = bucket.get(v, 0.0) + s.value
            elif hist is not None:
                scrape.buckets.setdefault(hist, {}).setdefault(v, []).append((float(labels["le"]), s.value))
            elif s.name == "vllm:num_requests_running":
                scrape.running[v] = s.value
            elif s.name == "vllm:num_requests_waiting":
                scrape.waiting += s.value
            elif s.name == "workbench:adapter_loaded" and s.value:
                scrape.loaded.append(v)
            elif s.name == "workbench:resident_memory_bytes":
                scrape.rss_bytes = s.value
            elif s.name == "workbench:cuda_memory_allocated_bytes":
                scrape.cuda_bytes = s.value
    for per_variant in scrape.buckets.values():
        for series in per_variant.values():
            series.sort()
    _add_all(scrape)
    return scrape


def _add_all(scrape: Scrape) -> None:
    """An ``all`` variant: counters and histogram buckets summed over the variants."""
    for per_variant in scrape.counters.values():
        per_variant[ALL] = sum(n for v, n in per_variant.items() if not v.startswith(ROUTE_PREFIX))
    for per_variant in scrape.buckets.values():
        total: dict[float, float] = {}
        for v, series in per_variant.items():
            if v.startswith(ROUTE_PREFIX):
                continue
            for bound, count in series:
                total[bound] = total.get(bound, 0.0) + count
        per_variant[ALL] = sorted(total.items())


def histogram_quantile(q: float, buckets: list[tuple[float, float]]) -> float | None:
    """Prometheus' rule over cumulative (bound, count) pairs; None without observations."""
    if not buckets or buckets[-1][1] <= 0:
        return None
    rank, prev_bound, prev_count = q * buckets[-1][1], 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if math.isinf(bound):
                return prev_bound  # beyond the last finite bound: report that bound
            width = count - prev_count
            return prev_bound + (bound - prev_bound) * ((rank - prev_count) / width if width else 1.0)
        prev_bound, prev_count = bound, count
    return prev_bound


def _delta_buckets(new: list[tuple[float, float]], old: list[tuple[float, float]] | None) -> list[tuple[float, float]]:
    before = dict(old or [])
    return [(b, c - before.get(b, 0.0)) for b, c in new]


def scrape_rows(new: Scrape, old: Scrape | None) -> list[TopRow]:
    """Per variant figures between two scrapes (``old`` None: since the server started)."""
    span = max(new.at - old.at, 1e-3) if old else None
    variants = sorted(new.counters.get("requests", {}),
                      key=lambda v: (v != ALL, v.startswith(ROUTE_PREFIX), v))
    rows = []
    for v in variants:
        def delta(key: str) -> float:
            was = old.counters.get(key, {}).get(v, 0.0) if old else 0.0
            return new.counters.get(key, {}).get(v, 0.0) - was

        def quantiles(key: str) -> tuple[float | None, float | None, float | None]:
            series = _delta_buckets(new.buckets.get(key, {}).get(v, []),
                                    old.buckets.get(key, {}).get(v) if old else None)
            return tuple(histogram_quantile(q, series) for q in (0.5, 0.95, 0.99))  # type: ignore[return-value]

        n, queries = delta("requests"), delta("prefix_queries")
        rows.append(TopRow(v, int(n), n / span if span else None,
                           delta("tokens") / span if span else None, quantiles("ttft"),
                           quantiles("e2e"), delta("prefix_hits") / queries if queries else None))
    return rows


def telemetry_rows(tel: object, window_s: float) -> list[TopRow]:
    """The same rows from a Telemetry in this process (its ring buffer, exact percentiles)."""
    stats = {"all": tel.window(window_s), **tel.by_adapter(window_s),  # type: ignore[attr-defined]
             **tel.by_route_arm(window_s)}  # type: ignore[attr-defined]
    return [TopRow(ref, s.requests, s.requests_per_s, s.tokens_per_s,
                   (s.ttft_p50_s, s.ttft_p95_s, s.ttft_p99_s), (s.e2e_p50_s, s.e2e_p95_s, s.e2e_p99_s),
                   s.prefix_hit_rate) for ref, s in stats.items()]


class History:
    """Scrapes of one ``top`` session, enough for the longest window."""

    def __init__(self) -> None:
        self.scrapes: deque[Scrape] = deque()

    def add(self, scrape: Scrape) -> None:
        self.scrapes.append(scrape)
        while len(self.scrapes) > 2 and scrape.at - self.scrapes[1].at >= max(WINDOWS.values()):
            self.scrapes.popleft()

    def base_for(self, window_s: float) -> Scrape | None:
        """The newest earlier scrape at least a window old, else the first one (None alone)."""
        latest = self.scrapes[-1]
        earlier = [s for s in list(self.scrapes)[:-1] if latest.at - s.at >= window_s]
        if earlier:
            return earlier[-1]
        return self.scrapes[0] if len(self.scrapes) > 1 else None


def _s(values: tuple[float | None, ...]) -> str:
    return "/".join("–" if v is None else f"{v:.2f}" for v in values)


def render(rows: list[TopRow], scrape: Scrape | None, window: str, span_s: float | None,
           price_per_hour: float | None = None) -> str:
    head = [f"workbench top · window {window}" + (f" (over {span_s:.0f} s seen)" if span_s else
                                                   " (since the server started; rates from the next refresh)")]
    if price_per_hour is not None:
        head.append(_cost(rows, price_per_hour, window))
    if scrape is not None:
        mem = "" if scrape.rss_bytes is None else f" · memory {scrape.rss_bytes / 2**20:,.0f} MiB"
        gpu = "" if scrape.cuda_bytes is None else f" · GPU {scrape.cuda_bytes / 2**20:,.0f} MiB"
        head.append(f"running {sum(scrape.running.values()):.0f} · waiting {scrape.waiting:.0f}{mem}{gpu}"
                    f" · adapters: {', '.join(scrape.loaded) or 'none'}")
    head.append(f"{'variant':<24}{'reqs':>6}{'req/s':>8}{'tok/s':>8}  {'TTFT p50/95/99 s':<18}"
                f"{'e2e p50/95/99 s':<20}{'prefix hit':>10}")
    for r in rows:
        hit = "–" if r.prefix_hit_rate is None else f"{r.prefix_hit_rate:.0%}"
        rate = "–" if r.requests_per_s is None else f"{r.requests_per_s:.2f}"
        toks = "–" if r.tokens_per_s is None else f"{r.tokens_per_s:.1f}"
        head.append(f"{r.variant:<24}{r.requests:>6}{rate:>8}{toks:>8}  "
                    f"{_s(r.ttft_s):<18}{_s(r.e2e_s):<20}{hit:>10}")
    if not rows:
        head.append("(no finished requests yet)")
    return "\n".join(head)


def _all_row(rows: list[TopRow]) -> TopRow | None:
    return next((r for r in rows if r.variant == ALL), None)


def _cost(rows: list[TopRow], price_per_hour: float, window: str) -> str:
    """The cost line of the ``all`` row (n/a until requests came and a rate is known)."""
    every = _all_row(rows)
    return cost_line(price_per_hour, every.requests if every else 0,
                     every.requests_per_s if every else None, f"over {window}")


def fetch_metrics(server: str, timeout: float = 5.0) -> str:
    import httpx

    url = server.rstrip("/") + "/metrics"
    try:
        resp = httpx.get(url, timeout=timeout)
        resp.raise_for_status()
    except httpx.HTTPError as exc:
        raise InputError(f"Could not read {url}: {exc}. Is `python app.py` or `workbench serve` "
                         "running there?") from exc
    return resp.text


def top_frames(server: str, window: str, interval: float, iterations: int | None,
               price_per_hour: float | None = None) -> Iterator[tuple[str, dict]]:
    """(text, json-able figures) once per interval; with a price, the cost per 1,000 requests."""
    history, n = History(), 0
    while iterations is None or n < iterations:
        if n:
            time.sleep(interval)
        scrape = parse_metrics(fetch_metrics(server), time.time())
        history.add(scrape)
        base = history.base_for(WINDOWS[window])
        rows = scrape_rows(scrape, base)
        span = scrape.at - base.at if base else None
        every = _all_row(rows)
        cost = (cost_per_1k(price_per_hour, every.requests_per_s)
                if price_per_hour and every and every.requests else None)
        yield render(rows, scrape, window, span, price_per_hour), {
            "window": window, "span_s": span, "running": sum(scrape.running.values()),
            "waiting": scrape.waiting, "rss_bytes": scrape.rss_bytes, "cuda_bytes": scrape.cuda_bytes,
            "adapters": scrape.loaded, "variants": [asdict(r) for r in rows],
            "price_per_hour": price_per_hour, "cost_per_1k": cost}
        n += 1


@click.command("top")
@click.option("--server", default=lambda: os.environ.get("WORKBENCH_SERVER", "http://127.0.0.1:7860"),
              show_default="WORKBENCH_SERVER or http://127.0.0.1:7860", help="URL of a running app or API server.")
@click.option("--window", type=click.Choice(list(WINDOWS)), default="5m", show_default=True,
              help="Span the rates and percentiles are computed over.")
@click.option("--interval", default=2.0, show_default=True, help="Seconds between refreshes.")
@click.option("--iterations", type=int, default=None, help="Stop after this many refreshes (default: until Ctrl-C).")
@click.option("--json", "as_json", is_flag=True, help="One JSON line per refresh instead of the table.")
def top_cmd(server: str, window: str, interval: float, iterations: int | None, as_json: bool) -> None:
    """Live serving figures of a running server (the Monitor tab's), refreshed in the terminal;
    with WORKBENCH_PRICE_PER_HOUR set (a price per replica-hour), the cost per 1,000 requests too.

    Example: workbench top --server http://127.0.0.1:7860 --window 15m
    """
    if interval <= 0:
        raise InputError("--interval must be positive.")
    price = price_from_env()
    try:
        for text, data in top_frames(server, window, interval, iterations, price):
            if as_json:
                click.echo(json.dumps(data))
            else:
                if iterations is None:  # a live view redraws in place; a bounded run appends
                    click.clear()
                click.echo(text + "\n")
    except KeyboardInterrupt:
        pass


COMMANDS = [top_cmd]
