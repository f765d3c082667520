"""The correctness checks of :mod:`workbench.devtools.gpu_check`: INT4 AWQ, the engine on it, training.

Every token comparison is against a *scorer*: a second copy of the INT4 base with the same
adapters, run one row at a time with a full prefill (no batch, no cached prefix). A row is
right when its tokens are greedy under the scorer for its own adapter (within the tolerance
rule), and the check also confirms the rule has teeth: under another adapter the same tokens
sit far from greedy.
"""
from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any

from workbench.devtools.greedy_match import logit_tolerance as tolerance
from workbench.devtools.greedy_match import prompt_ids
from workbench.devtools.greedy_match import teacher_forced_logits as forced_logits
from workbench.devtools.gpu_check_core import (QUESTIONS, SYSTEM, TINY_SEED, CheckFailed, CheckSkipped, Run,
                                      greedy_gap, invoke_cli, parted_at_confident_step)


def _msgs(text: str, system: str | None = None) -> list[dict[str, str]]:
    head = [{"role": "system", "content": system}] if system else []
    return head + [{"role": "user", "content": text}]


def _tiny_float(run: Run) -> tuple[Any, Any]:
    """The float tiny GLM the INT4 base is made from (same seed: same weights every time)."""
    from workbench.models.tiny import build_tiny_glm

    return build_tiny_glm("glm", seed=TINY_SEED, hidden=run.plan.tiny_hidden)


def _quant_kernels(model: Any) -> list[str]:
    """Class names of the gptqmodel quantized linears that serve ``model``."""
    from gptqmodel.nn_modules.qlinear import BaseQuantLinear

    return sorted({f"{type(m).__module__}.{type(m).__name__}" for m in model.modules()
                   if isinstance(m, BaseQuantLinear)})


def quantize_check(run: Run) -> dict[str, Any]:
    """``workbench quantize`` on the device; plain transformers loads it; logits near float."""
    import torch

    from workbench.models.awq import load_awq_model

    plan, tmp = run.plan, run.state["tmp"]
    model, tok = _tiny_float(run)
    src, dst = tmp / "tiny-float", tmp / "tiny-glm-awq"
    model.save_pretrained(src)
    tok.save_pretrained(src)
    start = time.monotonic()
    invoke_cli(["quantize", str(src), str(dst), "--group-size", str(plan.group_size),
                "--calib-samples", str(plan.calib_samples), "--device", plan.device])
    quantize_s = time.monotonic() - start
    start = time.monotonic()
    qmodel = load_awq_model(dst, device=plan.device)  # AutoModelForCausalLM.from_pretrained
    load_s = time.monotonic() - start
    kernels = _quant_kernels(qmodel)
    tok.padding_side = "right"
    enc = tok(QUESTIONS, return_tensors="pt", padding=True).to(plan.device)
    tok.padding_side = "left"
    with torch.inference_mode():
        got = qmodel(**enc).logits.float()[enc["attention_mask"].bool()]  # [N, V]
        want = model.to(plan.device)(**enc).logits.float()[enc["attention_mask"].bool()]
    cos = float(torch.nn.functional.cosine_similarity(got, want, dim=-1).mean())
    top1 = float((got.argmax(-1) == want.argmax(-1)).float().mean())
    details = {"kernels": kernels, "quantize_s": round(quantize_s, 2), "load_s": round(load_s, 2),
               "compute_dtype": str(next(qmodel.parameters()).dtype).replace("torch.", ""),
               "logit_cosine": round(cos, 4), "top1_agreement": round(top1, 4),
               "finite": bool(torch.isfinite(got).all())}
    # Thresholds of tests/test_awq.py (measured there: cosine ~0.88, top-1 ~0.42 on CPU; a
    # broken path lands far below: swapped gate/up halves give cosine 0.38, top-1 0.04).
    if not kernels or not details["finite"] or cos <= 0.8 or top1 <= 0.3:
        raise CheckFailed(f"INT4 logits too far from float (cosine {cos:.3f}, top-1 {top1:.3f}) "
                          f"or no quantized kernel ({kernels})", details)
    run.state["awq_dir"] = dst
    del qmodel
    return details


# --------------------------------------------------------------------------- engine

def _make_adapters(run: Run) -> dict[str, Path]:
    """a1, a2 and a second version of a1, made on the float twin for the INT4 base."""
    from workbench.adapters.demo import make_random_adapter

    model, _ = _tiny_float(run)
    base_id = str(Path(run.state["awq_dir"]).resolve())
    root = run.state["tmp"] / "adapters"
    return {key: make_random_adapter(model, root / name / version, base_model_id=base_id,
                                     seed=seed, rank=4)
            for key, name, version, seed in (("a1", "a1", "v1", 1), ("a2", "a2", "v1", 2),
                                             ("a1v2", "a1", "v2", 7))}


def _scorer(run: Run, paths: dict[str, Path]) -> Any:
    """A second INT4 copy carrying every adapter, for one-row full-prefill references."""
    from peft import PeftModel

    from workbench.models.awq import load_awq_model

    base = load_awq_model(run.state["awq_dir"], device=run.plan.device)
    scorer = PeftModel.from_pretrained(base, str(paths["a1"]), adapter_name="a1", is_trainable=False)
    for key in ("a2", "a1v2"):
        scorer.load_adapter(str(paths[key]), adapter_name=key, is_trainable=False)
    return scorer.eval()


class Judge:
    """Scores engine rows against the scorer under the tolerance rule."""

    def __init__(self, scorer: Any, tokenizer: Any) -> None:
        self.scorer, self.tok, self.tol = scorer, tokenizer, tolerance(scorer)

    def logits(self, messages: list[dict[str, str]], tokens: list[int], adapter: str) -> Any:
        return forced_logits(self.scorer, prompt_ids(self.tok, messages), tokens, adapter)

    def gap(self, messages: list[dict[str, str]], tokens: list[int], adapter: str) -> float:
        return round(greedy_gap(self.logits(messages, tokens, adapter), tokens), 4)


def _finish(reqs: list[Any], timeout: float = 300.0) -> None:
    from workbench.engine import RequestStatus

    for r in reqs:
        if not r.done_event.wait(timeout) or r.status is not RequestStatus.FINISHED:
            raise CheckFailed(f"request {r.request_id} ended {r.status.value}: {r.error}")


def engine_checks(run: Run) -> None:
    """Mixed-adapter rows, prefix reuse and a hot-swap on the INT4 base (three checks)."""
    from workbench.config import EngineConfig
    from workbench.engine import Engine
    from workbench.models.catalog import load_model

    paths = _make_adapters(run)
    loaded = load_model(str(run.state["awq_dir"]), device=run.plan.device)
    config = EngineConfig(max_batch_size=4, max_wait_ms=500, min_prefix_tokens=4)
    with Engine(loaded, config) as engine:
        engine.load_adapter("a1", paths["a1"])
        engine.load_adapter("a2", paths["a2"])
        judge = Judge(_scorer(run, paths), loaded.tokenizer)
        run.check("engine_mixed_adapters", lambda: _mixed(run, engine, judge))
        run.check("engine_prefix_reuse", lambda: _prefix(run, engine, judge))
        run.check("engine_hot_swap", lambda: _hot_swap(run, engine, judge, paths))
        run.check("train_serves_on_int4", lambda: _serve_trained(run, engine, loaded))
        del judge


ROWS = [(QUESTIONS[0], "__base__"), (QUESTIONS[1], "a1"), (QUESTIONS[2], "a2"), (QUESTIONS[0], "a1")]
OTHER = {"__base__": "a1", "a1": "a2", "a2": "a1"}


def _mixed(run: Run, engine: Any, judge: Judge) -> dict[str, Any]:
    n = run.plan.new_tokens
    batch = [engine.submit(_msgs(q), a, max_new_tokens=n) for q, a in ROWS]
    _finish(batch)
    rows, bad = [], []
    for (q, a), req in zip(ROWS, batch):
        alone = engine.submit(_msgs(q), a, max_new_tokens=n)
        _finish([alone])
        ref = list(alone.output_token_ids)
        parted = parted_at_confident_step(ref, list(req.output_token_ids),
                                          judge.logits(_msgs(q), ref, a), judge.tol)
        row = {"adapter": a, "batch_size": req.metrics.batch_size,
               "alone_batch_size": alone.metrics.batch_size,
               "gap_own": judge.gap(_msgs(q), list(req.output_token_ids), a),
               "gap_other_adapter": judge.gap(_msgs(q), list(req.output_token_ids), OTHER[a]),
               "parted_at_confident_step": parted}
        rows.append(row)
        if parted is not None or row["gap_own"] > 2 * judge.tol:
            bad.append(f"{a} row '{q[:20]}'")
    static = engine.runner.static  # on CUDA the decode steps are captured by default
    details = {"tolerance": judge.tol, "rows": rows,
               "decode_graphs": dataclasses.asdict(static.stats) if static is not None else "off"}
    if max(r["batch_size"] for r in rows) < 2:
        raise CheckFailed("rows never shared a batch: mixed batching was not exercised", details)
    if bad:
        raise CheckFailed(f"rows differ from their alone runs or from greedy: {bad}", details)
    if not any(r["gap_other_adapter"] > 2 * judge.tol for r in rows):
        raise CheckFailed("no row is far from greedy under another adapter: the rule cannot "
                          "tell adapters apart here", details)
    return details


def _prefix(run: Run, engine: Any, judge: Judge) -> dict[str, Any]:
    n = run.plan.new_tokens
    submit = lambda: [engine.submit(_msgs(q, SYSTEM), a, max_new_tokens=n) for q, a in ROWS]  # noqa: E731
    first = submit()  # computes each (adapter, system prompt) once
    _finish(first)
    second = submit()  # starts from the cached keys/values
    _finish(second)
    rows, bad = [], []
    for (q, a), r1, r2 in zip(ROWS, first, second):
        t1, t2 = list(r1.output_token_ids), list(r2.output_token_ids)
        row = {"adapter": a, "cached_tokens": r2.metrics.cached_tokens,
               "prompt_tokens": r2.metrics.prompt_tokens, "gap_cached": judge.gap(_msgs(q, SYSTEM), t2, a),
               "parted_at_confident_step": parted_at_confident_step(
                   t1, t2, judge.logits(_msgs(q, SYSTEM), t1, a), judge.tol)}
        rows.append(row)
        if row["gap_cached"] > 2 * judge.tol or row["parted_at_confident_step"] is not None:
            bad.append(a)
    details = {"tolerance": judge.tol, "rows": rows}
    if not all(r["cached_tokens"] > 0 for r in rows):
        raise CheckFailed("the second run did not reuse the system prompt's keys/values", details)
    if bad:
        raise CheckFailed(f"reused-prefix rows differ from a full prefill: {bad}", details)
    return details


def _hot_swap(run: Run, engine: Any, judge: Judge, paths: dict[str, Path]) -> dict[str, Any]:
    """Swap a1 v1 -> v2 while an a1 request decodes: it ends on v1, the next runs on v2."""
    from workbench.engine import RequestStatus

    q = QUESTIONS[1]
    inflight = engine.submit(_msgs(q), "a1", max_new_tokens=run.plan.swap_tokens)
    deadline = time.monotonic() + 120
    while not inflight.output_token_ids and time.monotonic() < deadline:
        if inflight.status.is_done:
            break
        time.sleep(0.002)
    started_running = inflight.status is RequestStatus.RUNNING and not inflight.done_event.is_set()
    start = time.monotonic()
    engine.replace_adapter("a1", paths["a1v2"], paths["a1"])
    swap_ms = (time.monotonic() - start) * 1000
    _finish([inflight])
    after = engine.submit(_msgs(q), "a1", max_new_tokens=run.plan.new_tokens)
    _finish([after])
    t_in, t_after = list(inflight.output_token_ids), list(after.output_token_ids)
    details = {"swap_ms": round(swap_ms, 1), "swap_began_mid_request": started_running,
               "inflight_tokens": len(t_in), "gap_inflight_v1": judge.gap(_msgs(q), t_in, "a1"),
               "gap_after_v2": judge.gap(_msgs(q), t_after, "a1v2"),
               "gap_after_v1": judge.gap(_msgs(q), t_after, "a1"), "tolerance": judge.tol}
    if not started_running:
        raise CheckFailed("the request finished before the swap: nothing was in flight", details)
    if details["gap_inflight_v1"] > 2 * judge.tol:
        raise CheckFailed("the request in flight did not stay on the version it started with", details)
    if details["gap_after_v2"] > 2 * judge.tol or details["gap_after_v1"] <= 2 * judge.tol:
        raise CheckFailed("after the swap, a1 requests are not served by the new version", details)
    return details


# --------------------------------------------------------------------------- training

def _train_data(run: Run, n: int = 8) -> Path:
    from workbench.config import DATA_ROOT

    src = DATA_ROOT / "train" / "intents.jsonl"
    lines = [ln for ln in src.read_text(encoding="utf-8").splitlines() if ln.strip()][:n]
    out = run.state["tmp"] / "train.jsonl"
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return out


def train_check(run: Run) -> None:
    run.check("train_lora_step", lambda: _train(run))


def _train(run: Run) -> dict[str, Any]:
    """One LoRA step on the float tiny GLM on the device; the saved adapter changed."""
    import math

    from safetensors.torch import load_file

    from workbench.adapters.train import TrainConfig, train_adapter
    from workbench.models.loaded import LoadedModel

    model, tok = _tiny_float(run)
    loaded = LoadedModel("tiny-glm", "tiny-glm", model.to(run.plan.device), tok, run.plan.device,
                         "float32")
    awq_dir = run.state.get("awq_dir")
    out = run.state["tmp"] / "trained" / "v1"
    cfg = TrainConfig(max_steps=run.plan.train_steps, rank=4, batch_size=2, lr=1e-3, warmup_steps=0)
    result = train_adapter(loaded, [_train_data(run)], out, cfg,
                           base_model_id=str(Path(awq_dir).resolve()) if awq_dir else None,
                           checkpoint_dir=run.state["tmp"] / "ckpt", progress=False)
    weights = load_file(str(out / "adapter_model.safetensors"))
    moved = sum(1 for k, v in weights.items() if "lora_B" in k and bool(v.abs().sum() > 0))
    card = json.loads((out / "card.json").read_text())
    details = {"steps": result.steps, "seconds": round(result.seconds, 3),
               "losses": [round(x, 4) for x in result.losses], "card_device": card["train"]["device"],
               "lora_B_tensors_moved": moved}
    if not all(math.isfinite(x) for x in result.losses) or moved == 0:
        raise CheckFailed("the training step gave a non-finite loss or changed no weights", details)
    run.state["trained"] = out
    return details


def _serve_trained(run: Run, engine: Any, loaded: Any) -> dict[str, Any]:
    """The adapter trained on the float base validates and serves on the INT4 one."""
    from workbench.adapters.validate import validate_adapter

    out = run.state.get("trained")
    if out is None:
        raise CheckSkipped("no trained adapter: train_lora_step failed")
    validate_adapter(out, loaded)
    engine.load_adapter("trained", out)
    done = engine.generate(_msgs(QUESTIONS[0]), "trained", max_new_tokens=4)
    if done.error or not done.metrics.completion_tokens:
        raise CheckFailed(f"the trained adapter did not serve: {done.error}")
    return {"tokens": done.metrics.completion_tokens}
