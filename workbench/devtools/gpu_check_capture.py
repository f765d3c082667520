"""The capture part of :mod:`workbench.devtools.gpu_check`: what the engine's captured decode buys.

The same engine runs twice on the bench model with two random adapters: decode steps eager
at exact shapes (``decode_graphs="off"``), then bucketed and captured as CUDA graphs
(``"cuda"``; see ``workbench/engine/capture.py``). For each batch size (bucket) the rows mix
base and both adapters, greedy, a fixed number of new tokens.

A decode step's time is the difference of two runs (``long`` and ``short`` new tokens)
divided by the extra tokens, so the prefill and the start-up cancel out; each figure is the
best of ``repeats`` after a warm-up run (which is where capturing happens; its time is
reported apart). The captured rows are judged against the eager rows under the tests'
tolerance rule, with the eager model's teacher-forced logits: a graph that reads a stale
mask, position or adapter parts from eager at a confident step and fails the check, and so
does a capture the engine had to give up (it would have run eagerly, and said why). On the
CPU (the dry run) nothing can be captured: the second column runs the bucketed step eagerly
(``"static"``), so the code runs and no speed-up is claimed (``captured`` is false).
"""
from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

from workbench.devtools.gpu_check_core import QUESTIONS, SYSTEM, CheckFailed, Run, parted_at_confident_step

VARIANTS = ("__base__", "a1", "a2")


def capture_check(run: Run) -> None:
    run.check("decode_capture", lambda: _capture(run))


def _capture(run: Run) -> dict[str, Any]:
    plan = run.plan
    graphs = "cuda" if plan.device == "cuda" else "static"
    paths = _adapters(run)
    eager, eager_engine = _mode_run(run, "off", paths)
    captured, captured_engine = _mode_run(run, graphs, paths)
    details: dict[str, Any] = {"captured": graphs == "cuda", "modes": ["off", graphs],
                               "tokens": plan.capture_tokens, "buckets": {},
                               "decode": dataclasses.asdict(captured_engine.runner.static.stats)}
    if graphs != "cuda":
        details["note"] = "no CUDA here: the 'captured' column ran the bucketed step eagerly"
    for batch in plan.capture_batches:
        details["buckets"][str(batch)] = _compare(eager_engine, eager[batch], captured[batch], batch)
    if details["decode"]["fallback"]:
        raise CheckFailed(f"the engine gave up capturing: {details['decode']['fallback']}", details)
    parted = {b: v["parted_rows"] for b, v in details["buckets"].items() if v["parted_rows"]}
    if parted:
        raise CheckFailed(f"captured decode left eager at a confident step (batch: rows) {parted}", details)
    return details


def _adapters(run: Run) -> dict[str, Path]:
    from workbench.adapters.demo import make_random_adapter
    from workbench.models.catalog import load_model

    loaded = load_model(run.plan.bench_model, device="cpu")
    root = Path(run.state.setdefault("capture_tmp", _tmpdir()))
    return {name: make_random_adapter(loaded.model, root / name, base_model_id=loaded.model_id,
                                      seed=seed, rank=8)
            for name, seed in (("a1", 1), ("a2", 2))}


def _tmpdir() -> str:
    import tempfile

    return tempfile.mkdtemp(prefix="capture-")


def _mode_run(run: Run, mode: str, paths: dict[str, Path]) -> tuple[dict[int, dict[str, Any]], Any]:
    """Per batch size: ms per decode step, the warm-up's seconds and the long run's tokens."""
    import torch

    from workbench.config import EngineConfig
    from workbench.engine import Engine
    from workbench.models.catalog import load_model

    plan = run.plan
    loaded = load_model(plan.bench_model, device=plan.device)
    if plan.device == "cuda":
        loaded.model.to(torch.float16)
    config = EngineConfig(max_batch_size=max(plan.capture_batches), max_wait_ms=200.0,
                          prefix_cache_mb=0, decode_graphs=mode)
    engine = Engine(loaded, config).start()
    for name, path in paths.items():
        engine.load_adapter(name, path)
    short, long = plan.capture_tokens
    out: dict[int, dict[str, Any]] = {}
    try:
        for batch in plan.capture_batches:
            warm_s, _ = _timed(engine, batch, long)  # captures this bucket's graph
            t_short = min(_timed(engine, batch, short)[0] for _ in range(plan.capture_repeats))
            runs = [_timed(engine, batch, long) for _ in range(plan.capture_repeats)]
            t_long = min(t for t, _ in runs)
            out[batch] = {"ms_per_step": round((t_long - t_short) * 1000.0 / (long - short), 3),
                          "first_call_s": round(warm_s, 2), "tokens": runs[0][1]}
    finally:
        engine.shutdown()
    return out, engine


def _rows(batch: int) -> list[tuple[list[dict[str, str]], str]]:
    return [([{"role": "system", "content": SYSTEM},
              {"role": "user", "content": QUESTIONS[b % len(QUESTIONS)]}], VARIANTS[b % len(VARIANTS)])
            for b in range(batch)]


def _timed(engine: Any, batch: int, n: int) -> tuple[float, list[list[int]]]:
    """Seconds for ``batch`` rows of exactly ``n`` greedy tokens each, and their tokens."""
    from workbench.engine import RequestStatus, SamplingParams

    start = time.perf_counter()
    reqs = [engine.submit(m, a, SamplingParams(ignore_eos=True), max_new_tokens=n) for m, a in _rows(batch)]
    for r in reqs:
        if not r.done_event.wait(300) or r.status is not RequestStatus.FINISHED:
            raise CheckFailed(f"request {r.request_id} ended {r.status.value}: {r.error}")
    return time.perf_counter() - start, [list(r.output_token_ids) for r in reqs]


def _compare(judge_engine: Any, eager: dict[str, Any], captured: dict[str, Any], batch: int) -> dict[str, Any]:
    """Timings side by side; the captured rows judged by the eager model's logits."""
    from workbench.devtools.greedy_match import logit_tolerance, prompt_ids, teacher_forced_logits

    model, tok = judge_engine.runner.model, judge_engine.loaded.tokenizer
    tol = logit_tolerance(model)
    parted = []
    for b, ((messages, adapter), ref, got) in enumerate(zip(_rows(batch), eager["tokens"], captured["tokens"])):
        if ref != got:
            logits = teacher_forced_logits(model, prompt_ids(tok, messages), ref, adapter)
            if parted_at_confident_step(ref, got, logits, tol) is not None:
                parted.append(b)
    return {"eager": {k: eager[k] for k in ("ms_per_step", "first_call_s")},
            "captured": {k: captured[k] for k in ("ms_per_step", "first_call_s")},
            "speedup": round(eager["ms_per_step"] / max(captured["ms_per_step"], 1e-9), 2),
            "rows_identical": sum(a == b for a, b in zip(eager["tokens"], captured["tokens"])),
            "parted_rows": parted}
