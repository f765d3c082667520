"""Benchmark: the continuous-batching engine against static batching and sequential serving.

Closed loop: ``concurrency`` clients each send a request, wait for its answer, send the next,
until ``requests`` are done. The engine pass sends them through the engine; the baseline
serves the same clients one request at a time through ``model.generate`` (a lock stands for
the single-request server), so its latency includes the wait in that queue. Every request
generates exactly ``new_tokens`` tokens (EOS ignored) so passes compare.

Open loop (``open_loop.py``): Poisson arrivals of varied output lengths, one trace through
the engine, a static-batching baseline and the sequential baseline.
"""
from __future__ import annotations

import resource
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from workbench.backends.local import LocalBackend
from workbench.bench.dtypes import engine_dtype
from workbench.config import EngineConfig, engine_preset
from workbench.engine import BASE_ADAPTER, RequestSpec, SamplingParams
from workbench.domain.langs import LANGUAGES, example_questions
from workbench.domain.prompts import customer_prompt
from workbench.errors import InputError
from workbench.service.workbench import Workbench


@dataclass(frozen=True)
class BenchSettings:
    """What to measure."""

    # Model preset, hub id or folder.
    model: str
    # Clients sending requests at once.
    concurrency: int
    # Requests in total per pass.
    requests: int
    # Tokens generated per request.
    new_tokens: int
    # Adapter refs mixed with base rows (round robin); empty: base only.
    adapters: list[str] = field(default_factory=list)
    # Also run the sequential baseline.
    baseline: bool = True
    # How the engine's decode steps run (``EngineConfig.decode_graphs``; None: its default).
    decode_graphs: str | None = None


@dataclass
class PassResult:
    """Throughput and latency of one pass."""

    # "engine-mixed", "engine-single-adapter", "engine-base", "sequential".
    name: str
    # Generated tokens per second of wall time.
    tok_s: float
    # Per-request latency percentiles (ms), queueing included.
    p50_ms: float
    p95_ms: float
    p99_ms: float
    # Wall time of the pass (s) and tokens generated.
    wall_s: float
    tokens: int
    # Mean rows per decode step.
    mean_batch: float


@dataclass
class BenchReport:
    """All passes of one benchmark run."""

    # The settings measured.
    settings: BenchSettings
    # Model description.
    model: str
    # Passes by name.
    passes: dict[str, PassResult]
    # Peak resident memory of the process (MB).
    peak_rss_mb: float
    # How the engine ran its decode steps (``decode_path``).
    decode: str = "off"
    # The adapter names served, in the order the mixed passes cycle through them.
    adapters: list[str] = field(default_factory=list)
    # What the backend computes in (``bench.dtypes.engine_dtype``).
    dtype: str = "unknown"

    def summary(self) -> dict[str, float | str | None]:
        """The JSON line: ratios are baseline/engine so bigger is better."""
        eng = self.passes["engine-mixed"]
        base = self.passes.get("sequential")
        only_base = self.passes.get("engine-base")
        single = self.passes.get("engine-single-adapter")
        return {
            "throughput_ratio": round(eng.tok_s / base.tok_s, 3) if base else None,
            "p95_ratio": round(base.p95_ms / eng.p95_ms, 3) if base else None,
            "engine_tok_s": round(eng.tok_s, 2),
            "baseline_tok_s": round(base.tok_s, 2) if base else None,
            "mixed_overhead": round(eng.tok_s / only_base.tok_s - 1, 4) if only_base else None,
            "mixed_vs_single_adapter": round(eng.tok_s / single.tok_s - 1, 4) if single else None,
            "peak_rss_mb": round(self.peak_rss_mb, 1),
            "decode_graphs": self.decode,
        }


def bench_config(max_batch: int, decode_graphs: str | None) -> EngineConfig:
    """The throughput preset at ``max_batch`` rows; ``decode_graphs`` None keeps its default."""
    config = engine_preset("throughput").replace(max_batch_size=max_batch)
    return config if decode_graphs is None else config.replace(decode_graphs=decode_graphs)


def local_engine(wb: Workbench) -> LocalBackend:
    """The in-process engine, for the passes that drive its model directly."""
    if not isinstance(wb.engine, LocalBackend):
        raise InputError("This pass needs the model in this process (the local backend).")
    return wb.engine


def decode_path(wb: Workbench) -> str:
    """How the engine's decode steps ran: "off", or the static decoder's counts (a remote
    server's steps are its own: "off" here)."""
    if not isinstance(wb.engine, LocalBackend) or wb.engine.runner.static is None:
        return "off"
    return wb.engine.runner.static.summary()


def bench_prompts(n: int) -> list[list[dict[str, str]]]:
    """n chat prompts cycling through the 15 languages' example questions."""
    pool = [(lang, q) for lang in LANGUAGES for q in example_questions(lang)]
    if not pool:
        pool = [("en", "Where is my order? It has not arrived after ten days.")]
    return [customer_prompt(q, lang=lang, grounded=False)
            for lang, q in (pool[i % len(pool)] for i in range(n))]


def _closed_loop(n: int, concurrency: int, one: Callable[[int], tuple[float, int]]
                 ) -> tuple[list[float], int, float]:
    """Run ``one(i)`` for i < n from ``concurrency`` threads; -> latencies, tokens, wall s."""
    lock, counter = threading.Lock(), iter(range(n))
    lat: list[float] = []
    tokens = [0]

    def client() -> None:
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                return
            ms, toks = one(i)
            with lock:
                lat.append(ms)
                tokens[0] += toks

    start = time.monotonic()
    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return lat, tokens[0], time.monotonic() - start


def _result(name: str, lat: list[float], tokens: int, wall: float, mean_batch: float) -> PassResult:
    p50, p95, p99 = np.percentile(lat, [50, 95, 99]).tolist()
    return PassResult(name, tokens / wall, p50, p95, p99, wall, tokens, mean_batch)


def warm_prefixes(wb: Workbench, prompts: list, variants: list[str]) -> int:
    """One 1-token request per distinct system prompt and variant, all at once, so every
    pass finds the same prefixes cached (a pass that ran first would otherwise pay for them
    and look slower than the next); -> requests sent."""
    systems = {p[0]["content"]: p for p in prompts if p and p[0]["role"] == "system"}
    specs = [RequestSpec(p, v, 1, SamplingParams(ignore_eos=True))
             for p in systems.values() for v in variants]
    wb.engine.generate_many(specs)
    return len(specs)


def engine_pass(wb: Workbench, name: str, prompts: list, variants: list[str],
                s: BenchSettings) -> PassResult:
    sampling = SamplingParams(ignore_eos=True)
    steps_before, rows_before = wb.engine.stats.steps, wb.engine.stats.decode_rows

    def one(i: int) -> tuple[float, int]:
        c = wb.engine.generate(prompts[i], variants[i % len(variants)], s.new_tokens, sampling)
        return c.metrics.total_ms or 0.0, c.metrics.completion_tokens

    lat, tokens, wall = _closed_loop(len(prompts), s.concurrency, one)
    steps = wb.engine.stats.steps - steps_before
    # A remote backend runs no local decode steps: its mean batch is unknown here (nan).
    mean = (wb.engine.stats.decode_rows - rows_before) / steps if steps else float("nan")
    return _result(name, lat, tokens, wall, mean)


def sequential_pass(wb: Workbench, prompts: list, variants: list[str], s: BenchSettings) -> PassResult:
    """One request at a time through model.generate, switching adapters per request."""
    import torch

    engine = local_engine(wb)
    runner, tok = engine.runner, engine.loaded.tokenizer
    server = threading.Lock()

    def one(i: int) -> tuple[float, int]:
        arrival = time.monotonic()
        variant = variants[i % len(variants)]
        with server, torch.inference_mode(), runner.routing([variant]):
            enc = tok.apply_chat_template(prompts[i], add_generation_prompt=True, return_tensors="pt",
                                          return_dict=True).to(engine.loaded.device)
            out = runner.model.generate(**enc, max_new_tokens=s.new_tokens, min_new_tokens=s.new_tokens,
                                        do_sample=False, pad_token_id=tok.pad_token_id)
        return (time.monotonic() - arrival) * 1000.0, int(out.shape[1] - enc["input_ids"].shape[1])

    lat, tokens, wall = _closed_loop(len(prompts), s.concurrency, one)
    return _result("sequential", lat, tokens, wall, 1.0)


def closed_passes(wb: Workbench, s: BenchSettings, names: list[str], label: str = "engine",
                  progress: Callable[[str], None] = print) -> dict[str, PassResult]:
    """The closed-loop passes on ``wb``'s backend: ``label``-mixed (base and ``names`` round
    robin), ``label``-base and ``label``-single-adapter, after the same warm-up."""
    prompts = bench_prompts(s.requests)
    mixed = [BASE_ADAPTER, *names]
    plan = [(f"{label}-mixed", mixed), (f"{label}-base", [BASE_ADAPTER])]
    if names:
        plan.append((f"{label}-single-adapter", names[:1]))
    warm_prefixes(wb, prompts, mixed)
    engine_pass(wb, "warm-up", prompts[: s.concurrency], mixed, s)
    passes: dict[str, PassResult] = {}
    for name, variants in plan:
        progress(f"{name}: {s.requests} requests, {s.concurrency} at a time ...")
        passes[name] = engine_pass(wb, name, prompts, variants, s)
    return passes


def run_bench(s: BenchSettings, progress: Callable[[str], None] = print,
              start: Callable[..., Workbench] | None = None) -> BenchReport:
    """``start(model, adapters, engine_config)`` picks the backend (default: this process)."""
    # Batches as large as the clients in flight, so the engine can serve them all at once.
    config = bench_config(max(s.concurrency, 1), s.decode_graphs)
    if start is None:
        wb = Workbench.start(model=s.model, adapters=s.adapters, engine_config=config)
    else:
        wb = start(s.model, s.adapters or None, config)
    try:
        names = list(wb.engine.adapters)
        passes = closed_passes(wb, s, names, progress=progress)
        dtype = engine_dtype(wb)
        if s.baseline:
            wb.engine.shutdown()  # the baseline owns the model alone
            progress(f"sequential baseline: {s.requests} requests one at a time ...")
            passes["sequential"] = sequential_pass(wb, bench_prompts(s.requests),
                                                   [BASE_ADAPTER, *names], s)
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
        return BenchReport(s, wb.loaded.describe(), passes, rss, decode_path(wb), names, dtype)
    finally:
        wb.close()


def print_report(report: BenchReport, echo: Callable[[str], None] = print) -> None:
    echo(f"model: {report.model}")
    s = report.settings
    echo(f"{s.requests} requests, concurrency {s.concurrency}, {s.new_tokens} new tokens each")
    echo(f"{'pass':<24}{'tok/s':>9}{'P50 ms':>10}{'P95 ms':>10}{'P99 ms':>10}{'batch':>7}")
    for p in report.passes.values():
        echo(f"{p.name:<24}{p.tok_s:>9.1f}{p.p50_ms:>10.0f}{p.p95_ms:>10.0f}{p.p99_ms:>10.0f}"
             f"{p.mean_batch:>7.1f}")
    for key, value in report.summary().items():
        echo(f"{key}: {value}")

