"""Sizing: the largest open-loop arrival rate one replica takes while its end-to-end P95 stays
under a target, as requests per day, and what 1,000 requests cost at that rate.

The search probes rates with short open-loop runs (the open-loop workload, one seeded trace
per probe, at least ``probe_seconds`` of arrivals long: a probe of a few requests at a fast
rate is one burst that the batch absorbs, and would report a rate the replica cannot
sustain; measured on SmolLM2 on 2 cores against a 5 s target: probes of 32 requests met it
up to 8/s, probes of 60 s of arrivals missed it at 1/s and found 0.65/s). From the starting
rate it doubles while the target holds (halves while it does not) until one rate meets the
target and another misses it, then bisects between them
(geometric midpoints: rates span orders of magnitude) until they are within ``tolerance`` of
each other or ``max_probes`` runs are spent. The answer is the fastest rate that met the
target; when none missed it, it is a lower bound (``bounded`` False). Halving stops early
once it no longer lowers the P95 (by ``FLAT``): the replica's latency without queueing is
above the target then, and slower probes (each lasting requests / rate seconds) would only
take longer to say so.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from workbench.bench.closed_loop import bench_config, bench_prompts
from workbench.bench.open_loop import OpenLoopSettings, arrival_trace, engine_open_pass, warm_open
from workbench.engine import BASE_ADAPTER
from workbench.errors import InputError
from workbench.service.workbench import Workbench
from workbench.telemetry.cost import cost_per_1k, format_cost, requests_per_day

# Halving the rate while the target is missed stops once the P95 falls by less than this share.
FLAT = 0.1


@dataclass(frozen=True)
class Probe:
    """One short open-loop run at ``rate`` requests/s."""

    rate: float
    # End-to-end P95 it measured (s).
    p95_s: float
    met: bool


@dataclass
class Sizing:
    """The search's answer."""

    target_s: float
    # Fastest rate that met the target (requests/s); None when none did.
    rate: float | None
    # A faster rate missed the target (else the limit lies beyond what was probed).
    bounded: bool
    probes: list[Probe] = field(default_factory=list)
    # Price per replica-hour, when given.
    price_per_hour: float | None = None
    # Set when halving stopped lowering the P95: the lowest P95 seen (s), above the target.
    unloaded_p95_s: float | None = None
    # Each probe's arrivals lasted at least this long (s).
    probe_seconds: float | None = None

    @property
    def requests_per_day(self) -> float | None:
        return None if self.rate is None else requests_per_day(self.rate)

    @property
    def cost_per_1k(self) -> float | None:
        return None if self.price_per_hour is None else cost_per_1k(self.price_per_hour, self.rate)

    def summary(self) -> dict[str, object]:
        per_day, cost = self.requests_per_day, self.cost_per_1k
        return {"p95_target_s": self.target_s, "max_rate_per_s": _round(self.rate),
                "requests_per_day_per_replica": None if per_day is None else round(per_day),
                "rate_bounded": self.bounded, "unloaded_p95_s": _round(self.unloaded_p95_s),
                "probe_seconds": self.probe_seconds,
                "price_per_hour": self.price_per_hour,
                "cost_per_1k_requests": _round(cost),
                "probes": [{"rate": _round(p.rate), "e2e_p95_s": _round(p.p95_s), "met": p.met}
                           for p in self.probes]}


def _round(value: float | None) -> float | None:
    return None if value is None else float(f"{value:.4g}")


def search_rate(probe: Callable[[float], float], target_s: float, start: float,
                max_probes: int = 6, tolerance: float = 0.1) -> Sizing:
    """The fastest rate whose ``probe(rate)`` (an end-to-end P95 in seconds) is at most
    ``target_s``, within ``max_probes`` probes (see the module docstring)."""
    if start <= 0 or max_probes < 1:
        raise InputError("The search needs a positive starting rate and at least one probe.")
    met: float | None = None
    missed: float | None = None
    probes: list[Probe] = []
    rate = start
    while len(probes) < max_probes:
        p95 = probe(rate)
        ok = math.isfinite(p95) and p95 <= target_s
        probes.append(Probe(rate, p95, ok))
        if ok:
            met = rate if met is None else max(met, rate)
        else:
            missed = rate if missed is None else min(missed, rate)
        if met is None and _flat(probes):
            return Sizing(target_s, None, True, probes,
                          unloaded_p95_s=min(p.p95_s for p in probes[-2:]))
        if met is None or missed is None:
            rate = rate * 2 if ok else rate / 2
        elif missed / met - 1 <= tolerance:
            break
        else:
            rate = math.sqrt(met * missed)
    return Sizing(target_s, met, missed is not None, probes)


def _flat(probes: list[Probe]) -> bool:
    """The last two probes missed, and halving the rate lowered the P95 by less than ``FLAT``."""
    if len(probes) < 2 or probes[-1].met or probes[-2].met:
        return False
    faster, slower = probes[-2].p95_s, probes[-1].p95_s
    return math.isfinite(faster) and math.isfinite(slower) and slower > (1 - FLAT) * faster


def probe_size(requests: int, rate: float, probe_seconds: float) -> int:
    """Requests of a probe at ``rate``: at least ``requests``, and ``probe_seconds`` of arrivals."""
    return max(requests, math.ceil(rate * probe_seconds))


def run_sizing(s: OpenLoopSettings, target_s: float, max_probes: int, price_per_hour: float | None,
               progress: Callable[[str], None] = print,
               start: Callable[..., Workbench] | None = None, probe_seconds: float = 60.0) -> Sizing:
    """The search on ``start``'s backend (default: this process's engine), each probe the
    open-loop trace of ``s`` at the probed rate, ``probe_size`` requests long; warmed up once."""
    config = bench_config(s.max_batch, s.decode_graphs)
    wb = (start(s.model, s.adapters or None, config) if start else
          Workbench.start(model=s.model, adapters=s.adapters, engine_config=config))
    try:
        variants = [BASE_ADAPTER, *wb.engine.adapters]
        prompts = bench_prompts(s.requests)
        warm_open(wb, s, variants, prompts)

        def probe(rate: float) -> float:
            n = probe_size(s.requests, rate, probe_seconds)
            p = engine_open_pass(wb, arrival_trace(n, rate, variants, s.seed), bench_prompts(n))
            progress(f"{rate:.3g} requests/s ({n} requests): end-to-end P95 {p.e2e_p95_ms / 1000:.2f} s "
                     f"({'meets' if p.e2e_p95_ms / 1000 <= target_s else 'misses'} {target_s:g} s)")
            return p.e2e_p95_ms / 1000.0

        sizing = search_rate(probe, target_s, s.rate, max_probes)
        sizing.price_per_hour, sizing.probe_seconds = price_per_hour, probe_seconds
        return sizing
    finally:
        wb.close()


def print_sizing(sizing: Sizing, s: OpenLoopSettings, echo: Callable[[str], None] = print) -> None:
    long = f" and {sizing.probe_seconds:g} s of arrivals" if sizing.probe_seconds else ""
    echo(f"sizing: open loop, at least {s.requests} requests{long} per probe, batch {s.max_batch}, "
         f"seed {s.seed}; end-to-end P95 target {sizing.target_s:g} s")
    for p in sizing.probes:
        echo(f"  {p.rate:>9.3g}/s  P95 {p.p95_s:>7.2f} s  {'met' if p.met else 'missed'}")
    if sizing.unloaded_p95_s is not None:
        echo(f"no rate meets the target: halving the rate no longer lowered the P95 (lowest "
             f"{sizing.unloaded_p95_s:.2f} s), so one request alone takes longer than {sizing.target_s:g} s "
             "here; raise the target or shorten the answers.")
        return
    if sizing.rate is None:
        echo(f"no probed rate met the target (slowest tried: {min(p.rate for p in sizing.probes):.3g}/s); "
             "the target is below this replica's unloaded latency, or start lower with --rate.")
        return
    bound = "" if sizing.bounded else " (at least: no probed rate missed the target; raise --max-probes)"
    echo(f"max rate: {sizing.rate:.3g} requests/s = {sizing.requests_per_day:,.0f} requests/day per "
         f"replica{bound}")
    if sizing.price_per_hour is not None:
        echo(f"cost per 1,000 requests at that rate: {format_cost(sizing.cost_per_1k)} "
             f"(at {sizing.price_per_hour:g} per replica-hour)")
