"""Open-loop benchmark: one Poisson arrival trace through three servers, in one run.

Shaped like vLLM's serving benchmark: requests arrive at ``rate`` per second whether or not
earlier ones are done (a closed loop hides queueing: its clients wait politely). Prompts are
the project's multilingual chat examples; each request draws ``max_new_tokens`` from
{16, 32, 64, 128} and stops at EOS if the model ends earlier; half the rows run on base,
half on the adapters. The same seeded trace goes through

1. the engine (continuous batching: rows join and leave between steps),
2. a static-batching baseline (the engine before continuous batching): gather up to B
   waiting requests, one ``generate`` with per-row adapters and the same system-prompt
   reuse, repeat; a row that stopped stays in the batch and its answer is complete only when
   the batch's ``generate`` returns,
3. the sequential baseline: one ``generate`` at a time, in arrival order.

For each: throughput, TTFT, inter-token latency, end-to-end latency and mean running batch.
"""
from __future__ import annotations

import resource
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from transformers import StoppingCriteria, StoppingCriteriaList
from transformers.generation.streamers import BaseStreamer

from workbench.bench.closed_loop import bench_config, bench_prompts, decode_path, local_engine, warm_prefixes
from workbench.bench.dtypes import engine_dtype
from workbench.engine import BASE_ADAPTER, Priority, SamplingParams
from workbench.engine.prefix import PromptIds, build_batch
from workbench.service.workbench import Workbench

OUTPUT_LENGTHS = (16, 32, 64, 128)


@dataclass(frozen=True)
class OpenLoopSettings:
    """What to measure."""

    # Model preset, hub id or folder.
    model: str
    # Mean arrivals per second (Poisson).
    rate: float
    # Requests in the trace.
    requests: int
    # Adapter refs for the non-base half of the rows.
    adapters: list[str] = field(default_factory=list)
    # Rows decoding at once (engine) / rows per generate (static baseline).
    max_batch: int = 16
    # Seed of the trace (arrival gaps, output lengths).
    seed: int = 0
    # Also run the sequential baseline (slow: it serves the trace one request at a time).
    sequential: bool = True
    # Also run the static-batching baseline.
    static: bool = True
    # How the engine's decode steps run (``EngineConfig.decode_graphs``; None: its default).
    decode_graphs: str | None = None


@dataclass(frozen=True)
class Arrival:
    """One request of the trace."""

    # Seconds after the trace starts.
    at: float
    # Index into the prompts, the variant, and the output cap.
    prompt: int
    variant: str
    max_new_tokens: int


@dataclass
class Served:
    """How one request was served."""

    ttft_ms: float
    e2e_ms: float
    tokens: int
    # Gaps between consecutive output tokens (ms).
    itl_ms: list[float]
    # Monotonic time it ended.
    ended: float


@dataclass
class OpenPass:
    """Figures of one server on the trace."""

    name: str
    tok_s: float
    ttft_p50_ms: float
    ttft_p95_ms: float
    itl_p50_ms: float
    itl_p95_ms: float
    e2e_p50_ms: float
    e2e_p95_ms: float
    e2e_p99_ms: float
    mean_batch: float
    wall_s: float
    tokens: int


def arrival_trace(n: int, rate: float, variants: list[str], seed: int) -> list[Arrival]:
    """Poisson arrivals (exponential gaps), output caps drawn from OUTPUT_LENGTHS; even rows
    on base, odd rows round robin over the other variants."""
    rng = np.random.default_rng(seed)
    at = np.cumsum(rng.exponential(1.0 / rate, n))
    at -= at[0]
    caps = rng.choice(OUTPUT_LENGTHS, n)
    adapters = [v for v in variants if v != BASE_ADAPTER] or [BASE_ADAPTER]
    return [Arrival(float(at[i]), i, BASE_ADAPTER if i % 2 == 0 else adapters[(i // 2) % len(adapters)],
                    int(caps[i])) for i in range(n)]


def _summary(name: str, served: list[Served], start: float, mean_batch: float) -> OpenPass:
    ttft = [s.ttft_ms for s in served]
    e2e = [s.e2e_ms for s in served]
    itl = [g for s in served for g in s.itl_ms] or [0.0]
    tokens = sum(s.tokens for s in served)
    wall = max(s.ended for s in served) - start
    pct = lambda xs, q: float(np.percentile(xs, q))  # noqa: E731
    return OpenPass(name, tokens / wall, pct(ttft, 50), pct(ttft, 95), pct(itl, 50), pct(itl, 95),
                    pct(e2e, 50), pct(e2e, 95), pct(e2e, 99), mean_batch, wall, tokens)


# ---- (1) the engine -------------------------------------------------------------------------
def engine_open_pass(wb: Workbench, trace: list[Arrival], prompts: list,
                     name: str = "engine") -> OpenPass:
    """The trace through ``wb``'s backend (the engine, or a server: the peer)."""
    stats = wb.engine.stats
    steps0, rows0 = stats.steps, stats.decode_rows
    start = time.monotonic()
    reqs = []
    for a in trace:
        time.sleep(max(0.0, start + a.at - time.monotonic()))
        reqs.append(wb.engine.submit(prompts[a.prompt], a.variant, SamplingParams(), a.max_new_tokens,
                                     Priority.INTERACTIVE))
    served = []
    for r in reqs:
        r.done_event.wait()
        t = r.metrics.token_times
        served.append(Served(r.metrics.ttft_ms or 0.0, r.metrics.total_ms or 0.0, r.metrics.completion_tokens,
                             [(b - a) * 1000.0 for a, b in zip(t, t[1:])], r.arrival + r.metrics.total_ms / 1000))
    steps = stats.steps - steps0
    # A server runs no local decode steps: its mean batch is unknown here (nan).
    mean = (stats.decode_rows - rows0) / steps if steps else float("nan")
    return _summary(name, served, start, mean)


# ---- (2) static batching and (3) sequential, on the bare model -----------------------------
class _StepClock(BaseStreamer):
    """Times each generate step and counts each row's tokens until its EOS or its own cap."""

    def __init__(self, caps: list[int], eos: set[int]) -> None:
        self.caps, self.eos = caps, eos
        self.times: list[float] = []
        self.counts = [0] * len(caps)
        self.done = [False] * len(caps)
        self._prompt_seen = False

    def put(self, value: torch.Tensor) -> None:
        if not self._prompt_seen:  # generate first sends the prompt ids
            self._prompt_seen = True
            return
        self.times.append(time.monotonic())
        for b, tok in enumerate(value.view(-1).tolist()):  # one new token per row: [B]
            if self.done[b]:
                continue
            if tok in self.eos:
                self.done[b] = True
                continue
            self.counts[b] += 1
            self.done[b] = self.counts[b] >= self.caps[b]

    def end(self) -> None:
        pass


class _RowsDone(StoppingCriteria):
    def __init__(self, clock: _StepClock) -> None:
        self.clock = clock

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs: object) -> torch.Tensor:
        return torch.tensor(self.clock.done, dtype=torch.bool, device=input_ids.device)  # [B]


def _generate_rows(wb: Workbench, batch: list[Arrival], prompts: list) -> _StepClock:
    """One generate over ``batch``, with per-row adapters and cached system prompts."""
    engine = local_engine(wb)
    runner = engine.runner
    rows, kvs = [], []
    for a in batch:
        fitted = runner.prompter.fit(prompts[a.prompt], runner.prompt_budget(a.max_new_tokens),
                                     runner.min_prefix())
        row = PromptIds(fitted.ids, fitted.prefix_len, a.variant)
        rows.append(row)
        kvs.append(runner.prefix_kv(row) if row.prefix_len else None)
    tok = engine.loaded.tokenizer
    clock = _StepClock([a.max_new_tokens for a in batch], runner.eos_ids)
    inputs = build_batch(rows, kvs, tok.pad_token_id, runner.model.config, engine.loaded.device)
    keys = [a.variant for a in batch]
    with torch.inference_mode(), runner.routing(keys):
        runner.model.generate(**inputs, max_new_tokens=max(clock.caps), do_sample=False,
                              pad_token_id=tok.pad_token_id, streamer=clock,
                              stopping_criteria=StoppingCriteriaList([_RowsDone(clock)]))
    return clock


def baseline_open_pass(wb: Workbench, trace: list[Arrival], prompts: list, max_batch: int,
                       name: str, gather_ms: float = 20.0) -> OpenPass:
    """Serve the trace with a model-owning server thread taking up to ``max_batch`` arrived
    requests per generate (``max_batch`` 1: sequential)."""
    start = time.monotonic()
    arrived: deque[Arrival] = deque()
    cond = threading.Condition()
    served: list[Served] = []
    batches: list[int] = []

    def feed() -> None:
        for a in trace:
            time.sleep(max(0.0, start + a.at - time.monotonic()))
            with cond:
                arrived.append(a)
                cond.notify()

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    while len(served) < len(trace):
        with cond:
            while not arrived:
                cond.wait()
        if max_batch > 1:  # today's scheduler: give a burst a moment to fill the batch
            time.sleep(max(0.0, start + arrived[0].at + gather_ms / 1000 - time.monotonic()))
        with cond:
            batch = [arrived.popleft() for _ in range(min(max_batch, len(arrived)))]
        clock = _generate_rows(wb, batch, prompts)
        end = time.monotonic()
        batches.append(len(batch))
        for b, a in enumerate(batch):
            t = clock.times[:max(clock.counts[b], 1)]
            arrival = start + a.at
            served.append(Served((t[0] - arrival) * 1000.0, (end - arrival) * 1000.0, clock.counts[b],
                                 [(y - x) * 1000.0 for x, y in zip(t, t[1:])], end))
    feeder.join()
    return _summary(name, served, start, float(np.mean(batches)))


# ---- the run --------------------------------------------------------------------------------
@dataclass
class OpenLoopReport:
    settings: OpenLoopSettings
    model: str
    passes: dict[str, OpenPass]
    peak_rss_mb: float
    # How the engine ran its decode steps (``bench.decode_path``).
    decode: str = "off"
    # The adapter names served, in the order the trace cycles through them.
    adapters: list[str] = field(default_factory=list)
    # What the backend computes in (``bench.dtypes.engine_dtype``).
    dtype: str = "unknown"

    def summary(self) -> dict[str, float | str | None]:
        """The JSON line: ratios are baseline / engine for latencies, engine / baseline for
        throughput, so bigger is better throughout."""
        eng, static, seq = (self.passes.get(k) for k in ("engine", "static", "sequential"))
        out: dict[str, float | str | None] = {
            "rate": self.settings.rate, "requests": self.settings.requests,
            "ttft_p95_vs_static": round(static.ttft_p95_ms / eng.ttft_p95_ms, 3) if static else None,
            "e2e_p95_vs_static": round(static.e2e_p95_ms / eng.e2e_p95_ms, 3) if static else None,
            "throughput_vs_static": round(eng.tok_s / static.tok_s, 3) if static else None,
            "throughput_vs_sequential": round(eng.tok_s / seq.tok_s, 3) if seq else None,
        }
        for p in self.passes.values():
            out[f"{p.name}_tok_s"] = round(p.tok_s, 2)
            out[f"{p.name}_ttft_p95_ms"] = round(p.ttft_p95_ms, 1)
            out[f"{p.name}_e2e_p95_ms"] = round(p.e2e_p95_ms, 1)
        out["peak_rss_mb"] = round(self.peak_rss_mb, 1)
        out["decode_graphs"] = self.decode
        return out


def with_open_loop(closed: dict, opened: dict) -> dict:
    """One JSON line for both workloads: the closed loop's keys, then the open loop's (``open_``
    in front of a key the closed loop already has)."""
    return {**closed, **{(f"open_{k}" if k in closed else k): v for k, v in opened.items()}}


def warm_open(wb: Workbench, s: OpenLoopSettings, variants: list[str], prompts: list) -> None:
    """Every system prompt cached for every variant, then a short burst, before a timed trace."""
    warm_prefixes(wb, prompts, variants)
    engine_open_pass(wb, arrival_trace(min(8, s.requests), 100.0, variants, s.seed + 1), prompts)


def open_pass(wb: Workbench, s: OpenLoopSettings, variants: list[str], label: str = "engine",
             progress: Callable[[str], None] = print) -> OpenPass:
    """The trace of ``s`` through ``wb``'s backend after the same warm-up; ``variants`` (base
    first) make the trace, so two backends given the same ones see the same requests."""
    prompts = bench_prompts(s.requests)
    trace = arrival_trace(s.requests, s.rate, variants, s.seed)
    progress(f"{label}: warm-up; then {s.requests} requests at {s.rate}/s over {trace[-1].at:.0f} s")
    warm_open(wb, s, variants, prompts)
    return engine_open_pass(wb, trace, prompts, label)


def run_open_loop(s: OpenLoopSettings, progress: Callable[[str], None] = print) -> OpenLoopReport:
    config = bench_config(s.max_batch, s.decode_graphs)
    wb = Workbench.start(model=s.model, adapters=s.adapters, engine_config=config)
    try:
        variants = [BASE_ADAPTER, *wb.engine.adapters]
        passes = {"engine": open_pass(wb, s, variants, progress=progress)}
        dtype = engine_dtype(wb)
        wb.engine.shutdown()  # the baselines own the model alone
        prompts = bench_prompts(s.requests)
        trace = arrival_trace(s.requests, s.rate, variants, s.seed)
        if s.static:
            progress("engine done; static-batching baseline ...")
            passes["static"] = baseline_open_pass(wb, trace, prompts, s.max_batch, "static")
        if s.sequential:
            progress("sequential baseline ...")
            passes["sequential"] = baseline_open_pass(wb, trace, prompts, 1, "sequential")
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
        return OpenLoopReport(s, wb.loaded.describe(), passes, rss, decode_path(wb), variants[1:],
                              dtype)
    finally:
        wb.close()


def print_open_report(report: OpenLoopReport, echo: Callable[[str], None] = print) -> None:
    s = report.settings
    echo(f"model: {report.model}")
    echo(f"open loop: {s.requests} requests, Poisson {s.rate}/s, outputs from {OUTPUT_LENGTHS} "
         f"(EOS ends earlier), batch {s.max_batch}, seed {s.seed}")
    echo(f"{'server':<12}{'tok/s':>8}{'TTFT50':>9}{'TTFT95':>9}{'ITL50':>8}{'ITL95':>8}"
         f"{'E2E50':>9}{'E2E95':>9}{'E2E99':>9}{'batch':>7}")
    for p in report.passes.values():
        echo(f"{p.name:<12}{p.tok_s:>8.1f}{p.ttft_p50_ms:>9.0f}{p.ttft_p95_ms:>9.0f}{p.itl_p50_ms:>8.0f}"
             f"{p.itl_p95_ms:>8.0f}{p.e2e_p50_ms:>9.0f}{p.e2e_p95_ms:>9.0f}{p.e2e_p99_ms:>9.0f}"
             f"{p.mean_batch:>7.1f}")
    for key, value in report.summary().items():
        echo(f"{key}: {value}")
