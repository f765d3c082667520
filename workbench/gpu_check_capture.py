"""The capture part of :mod:`workbench.gpu_check`: what a captured decode step would buy.

The engine's decode step runs eager (``workbench/engine/runner.py`` says why: PEFT's
mixed-adapter forward is Python control flow over each step's adapter names). Before the
engine gets a tensor-indexed LoRA path and a static cache to make capture possible, this
check measures the prize on the bare bench model, one batch size (bucket) at a time:
greedy ``generate`` with a static cache, eager (``disable_compile``) against transformers'
automatic compile of the decode forward (``torch.compile`` in "reduce-overhead" mode: CUDA
graphs, one per batch size).

A decode step's time is the difference of two runs (``long`` and ``short`` new tokens)
divided by the extra tokens, so the prefill and the start-up cancel out; each figure is the
best of ``repeats`` after a warm-up run (which is where compiling happens; its time is
reported apart). The captured run's tokens are compared with the eager run's under the
tests' tolerance rule: a captured graph that reads a stale mask or position parts from eager
at a confident step and fails the check. On the CPU (the dry run) transformers does not
compile, so both columns are eager: the code runs, no speed-up is claimed (``captured`` is
false in the details).
"""
from __future__ import annotations

import time
from typing import Any

from workbench.gpu_check_core import QUESTIONS, SYSTEM, CheckFailed, Run, parted_at_confident_step


def capture_check(run: Run) -> None:
    run.check("decode_capture", lambda: _capture(run))


def _capture(run: Run) -> dict[str, Any]:
    import torch

    from workbench.models.catalog import load_model

    plan = run.plan
    loaded = load_model(plan.bench_model, device=plan.device)
    model, tok = loaded.model, loaded.tokenizer
    if plan.device == "cuda":
        model.to(torch.float16)
    tok.padding_side = "left"
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    details: dict[str, Any] = {"model": loaded.describe(), "dtype": str(next(model.parameters()).dtype),
                               "captured": model.device.type == "cuda", "tokens": plan.capture_tokens,
                               "buckets": {}}
    if not details["captured"]:
        details["note"] = "no CUDA here: transformers ran the 'captured' column eager too"
    for batch in plan.capture_batches:
        details["buckets"][str(batch)] = _bucket(run, model, tok, batch)
    del model, loaded
    return details


def _inputs(tok: Any, batch: int, device: Any) -> dict[str, Any]:
    """``batch`` chat prompts (the check's questions, cycled), left-padded."""
    texts = [tok.apply_chat_template([{"role": "system", "content": SYSTEM},
                                      {"role": "user", "content": QUESTIONS[b % len(QUESTIONS)]}],
                                     add_generation_prompt=True, tokenize=False) for b in range(batch)]
    return tok(texts, return_tensors="pt", padding=True).to(device)


def _bucket(run: Run, model: Any, tok: Any, batch: int) -> dict[str, Any]:
    """Decode ms per step, eager and captured, at one batch size; tokens compared."""
    short, long = run.plan.capture_tokens
    enc = _inputs(tok, batch, model.device)
    out: dict[str, Any] = {}
    for label, disable in (("eager", True), ("captured", False)):
        warm_s, _ = _generate(model, tok, enc, long, disable)  # compiles on the first captured call
        t_short = min(_generate(model, tok, enc, short, disable)[0] for _ in range(run.plan.capture_repeats))
        runs = [_generate(model, tok, enc, long, disable) for _ in range(run.plan.capture_repeats)]
        t_long = min(t for t, _ in runs)
        out[label] = {"ms_per_step": round((t_long - t_short) * 1000.0 / (long - short), 3),
                      "first_call_s": round(warm_s, 2), "tokens": runs[0][1]}
    eager, captured = out["eager"].pop("tokens"), out["captured"].pop("tokens")
    out["speedup"] = round(out["eager"]["ms_per_step"] / max(out["captured"]["ms_per_step"], 1e-9), 2)
    out["rows_identical"] = sum(a == b for a, b in zip(eager, captured))
    parted = _parted_rows(model, enc, eager, captured)
    if parted:
        raise CheckFailed(f"captured decode left eager at a confident step in rows {parted} "
                          f"(batch {batch})", out)
    return out


def _generate(model: Any, tok: Any, enc: dict[str, Any], n: int, disable: bool) -> tuple[float, list[list[int]]]:
    """Seconds for one greedy generate of exactly ``n`` tokens per row, and the tokens."""
    import torch

    def sync() -> None:
        if model.device.type == "cuda":
            torch.cuda.synchronize()

    sync()
    start = time.perf_counter()
    with torch.inference_mode():
        ids = model.generate(**enc, max_new_tokens=n, min_new_tokens=n, do_sample=False,
                             cache_implementation="static", disable_compile=disable,
                             pad_token_id=tok.pad_token_id)
    sync()
    return time.perf_counter() - start, ids[:, enc["input_ids"].shape[1]:].tolist()


def _parted_rows(model: Any, enc: dict[str, Any], eager: list[list[int]],
                 captured: list[list[int]], tol: float = 0.05) -> list[int]:
    """Rows where captured leaves eager although eager's logits were not near a tie there
    (half precision differs between kernels; a wrong mask or position differs by whole units)."""
    import torch

    parted = []
    for b, (ref, got) in enumerate(zip(eager, captured)):
        if ref == got:
            continue
        ids = torch.cat([enc["input_ids"][b:b + 1], torch.tensor([ref], device=model.device)], 1)
        mask = torch.cat([enc["attention_mask"][b:b + 1], torch.ones_like(ids[:, -len(ref):])], 1)
        with torch.inference_mode():
            logits = model(input_ids=ids, attention_mask=mask).logits[0, -len(ref) - 1:-1].float()
        if parted_at_confident_step(ref, got, logits, tol) is not None:
            parted.append(b)
    return parted
