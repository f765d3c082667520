"""The sizing search (with a fake probe), duration parsing and the cost arithmetic."""
from __future__ import annotations

import math

import pytest

from workbench.bench.sizing import Sizing, probe_size, search_rate
from workbench.bench.units import parse_duration
from workbench.errors import InputError
from workbench.telemetry.cost import cost_per_1k, parse_price, price_from_env, requests_per_day


def linear_p95(rate: float) -> float:
    """A replica whose P95 grows with the rate: 0.2 s idle, +0.1 s per request/s (6/s at 0.8 s)."""
    return 0.2 + 0.1 * rate


def test_search_doubles_then_bisects_to_the_fastest_rate_under_the_target() -> None:
    seen: list[float] = []
    sizing = search_rate(lambda r: seen.append(r) or linear_p95(r), 0.8, start=0.5, max_probes=10)
    assert seen[:5] == [0.5, 1.0, 2.0, 4.0, 8.0]  # doubling until 8/s misses
    assert sizing.bounded and 6.0 / 1.1 <= sizing.rate <= 6.0
    assert [p.met for p in sizing.probes] == [linear_p95(r) <= 0.8 for r in seen]
    # Bisection stops once the bracket is within 10%, before the probe budget is spent.
    assert len(seen) < 10
    met = max(p.rate for p in sizing.probes if p.met)
    missed = min(p.rate for p in sizing.probes if not p.met)
    assert sizing.rate == met and missed / met - 1 <= 0.1


def test_search_halves_from_a_start_that_misses_and_respects_the_probe_budget() -> None:
    seen: list[float] = []
    sizing = search_rate(lambda r: seen.append(r) or linear_p95(r), 0.8, start=64.0, max_probes=4)
    assert seen == [64.0, 32.0, 16.0, 8.0]
    assert sizing.rate is None and sizing.bounded and sizing.requests_per_day is None


def test_halving_stops_once_the_p95_no_longer_falls() -> None:
    seen: list[float] = []
    # Answers alone take ~3 s: queueing adds little below 1 request/s.
    sizing = search_rate(lambda r: seen.append(r) or 3.0 + 0.3 * r, 0.8, start=0.5, max_probes=6)
    assert seen == [0.5, 0.25] and sizing.rate is None and sizing.bounded
    assert sizing.unloaded_p95_s == pytest.approx(3.075)
    assert sizing.summary()["unloaded_p95_s"] == pytest.approx(3.075)
    assert search_rate(linear_p95, 0.8, start=64.0, max_probes=4).unloaded_p95_s is None


def test_a_probe_lasts_long_enough_for_a_queue_to_build_at_fast_rates() -> None:
    assert probe_size(32, 0.25, 60.0) == 32  # slow: the fewest requests asked for
    assert probe_size(32, 8.0, 60.0) == 480  # fast: a minute of arrivals, not a 4 s burst
    assert probe_size(32, 8.0, 1.5) == 32


def test_search_without_a_miss_reports_a_lower_bound() -> None:
    sizing = search_rate(lambda r: 0.1, 0.8, start=1.0, max_probes=3)
    assert sizing.rate == 4.0 and not sizing.bounded


def test_a_probe_without_a_figure_counts_as_a_miss() -> None:
    sizing = search_rate(lambda r: math.nan if r > 1 else 0.1, 0.8, start=1.0, max_probes=6)
    assert sizing.rate is not None and 1.0 <= sizing.rate < 2.0 and sizing.bounded


def test_requests_per_day_and_cost_per_1k_at_the_found_rate() -> None:
    sizing = Sizing(0.8, rate=2.0, bounded=True, price_per_hour=2.5)
    assert sizing.requests_per_day == 172_800
    # 2 req/s = 7,200 requests an hour for 2.5: 2.5 / 7.2 per 1,000.
    assert sizing.cost_per_1k == pytest.approx(2.5 / 7.2)
    summary = sizing.summary()
    assert summary["requests_per_day_per_replica"] == 172_800
    assert summary["cost_per_1k_requests"] == pytest.approx(0.3472, abs=1e-4)
    assert Sizing(0.8, rate=2.0, bounded=True).cost_per_1k is None


def test_cost_arithmetic() -> None:
    assert requests_per_day(1.0) == 86_400
    # 100k requests/day at 3.0 per hour: 72.0 per day / 100 thousand.
    assert cost_per_1k(3.0, 100_000 / 86_400) == pytest.approx(72.0 / 100)
    assert cost_per_1k(3.0, 0.0) is None and cost_per_1k(3.0, None) is None


@pytest.mark.parametrize("text, seconds", [("0.8s", 0.8), ("800ms", 0.8), ("800 ms", 0.8),
                                           ("2", 2.0), (".5s", 0.5), ("2min", 120.0), ("1.5S", 1.5)])
def test_durations_parse(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text, message", [("0.8x", "give a number with a unit"), ("fast", "give a number"),
                                           ("", "give a number"), ("0s", "longer than zero"),
                                           ("-1s", "longer than zero")])
def test_bad_durations_are_refused(text: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        parse_duration(text)


def test_prices_from_the_environment() -> None:
    assert price_from_env({}) is None and price_from_env({"WORKBENCH_PRICE_PER_HOUR": " "}) is None
    assert price_from_env({"WORKBENCH_PRICE_PER_HOUR": "2.5"}) == 2.5
    for bad in ("abc", "0", "-1", "nan", "inf"):
        with pytest.raises(InputError, match="WORKBENCH_PRICE_PER_HOUR must be a positive price"):
            parse_price(bad)
