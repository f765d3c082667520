"""The tolerance rule for greedy decodes compared across batch shapes.

Float and INT4 kernels do not promise the same last bits for a row run alone and the same
row inside a padded, mixed batch: blocking and vectorisation change with the batch shape and
the CPU. Two greedy decodes of one prompt may therefore part ways where the top two logits
are within rounding noise of each other, and only there. The rule used by the tests:

* **Near-greedy under the right model.** Every token a row produced must be within
  ``2 * tol`` of the best logit of *its own* prompt and adapter, run alone and teacher-forced
  over the row's tokens. A wrong adapter, a wrong mask or a wrong position moves logits by
  whole units (measured on the tiny GLM: a swapped adapter changes the first step's logits by
  3.5-6.5), so it picks tokens that are far from the argmax of the right distribution.
* **Close logits up to the first difference.** Where both runs' logits are known (``generate``
  with ``output_logits``), they agree within ``tol`` at every step up to and including the
  first step where the tokens differ, and that step must be a near-tie of the reference
  (top-2 margin at most ``2 * tol``). Later steps are not compared: the two continuations are
  then different texts.

``tol`` depends on the arithmetic. Measured on the tiny GLM (logits of magnitude ~10), a padded
3-row batch against each row alone: float32 rows differ by at most 2.1e-5; INT4 AWQ rows
(gptqmodel's CPU kernel) by up to 2.8e-2, at one step whose margin was 2.3e-2 (the step where
another CPU picked the other token). The tolerances below leave a wide margin above that and
stay far below what a wrong adapter, mask or position does.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import torch

from workbench.engine.request import BASE_ADAPTER

# Largest logit difference batch-shape rounding may cause, by arithmetic.
FLOAT32_TOL = 1e-3
HALF_OR_INT4_TOL = 1e-1


def logit_tolerance(model: Any) -> float:
    """``tol`` for ``model``: float32 kernels, or half precision / INT4 kernels."""
    from workbench.models.awq import is_awq_model

    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    if is_awq_model(base) or base.dtype in (torch.float16, torch.bfloat16):
        return HALF_OR_INT4_TOL
    return FLOAT32_TOL


def prompt_ids(tokenizer: Any, messages: list[dict[str, str]]) -> list[int]:
    """The templated prompt's ids, tokenized as the engine does."""
    text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def teacher_forced_logits(model: Any, prompt: Sequence[int], tokens: Sequence[int],
                          adapter: str = BASE_ADAPTER) -> torch.Tensor:
    """Logits predicting each of ``tokens`` after ``prompt``, the row alone. [S, V] float32"""
    ids = torch.tensor([list(prompt) + list(tokens)], device=model.device)  # [1, P+S]
    peft = hasattr(model, "peft_config")
    with torch.inference_mode():
        if peft and adapter == BASE_ADAPTER:
            with model.disable_adapter():
                logits = model(input_ids=ids).logits
        else:
            if peft:  # PEFT's own single-adapter forward: a reference apart from the engine's routing
                model.set_adapter(adapter)
            logits = model(input_ids=ids).logits  # [1, P+S, V]
    return logits[0, len(prompt) - 1: len(prompt) + len(tokens) - 1].float()


def penalised(logits: torch.Tensor, prompt: Sequence[int], tokens: Sequence[int],
              repetition_penalty: float = 1.0, banned: Iterable[int] = ()) -> torch.Tensor:
    """``logits`` [S, V] as the sampler saw them: repetition penalty over prompt and output so
    far (transformers' rule: divide positive logits, multiply negative ones), banned ids off."""
    out = logits.clone()
    banned = list(banned)
    seen = list(prompt)
    for s in range(out.shape[0]):
        if repetition_penalty != 1.0 and seen:
            idx = torch.tensor(sorted(set(seen)), device=out.device)
            row = out[s, idx]
            out[s, idx] = torch.where(row < 0, row * repetition_penalty, row / repetition_penalty)
        if banned:
            out[s, banned] = float("-inf")
        seen.append(tokens[s])
    return out


def assert_near_greedy(logits: torch.Tensor, tokens: Sequence[int], tol: float,
                       label: str = "") -> None:
    """Each token is within ``2 * tol`` of its step's best logit. logits: [S, V]"""
    assert logits.shape[0] == len(tokens), f"{label}: {logits.shape[0]} steps, {len(tokens)} tokens"
    for s, tok in enumerate(tokens):
        gap = float(logits[s].max() - logits[s, tok])
        assert gap <= 2 * tol, (f"{label}: step {s} took token {tok}, {gap:.4f} below the best "
                                f"logit (tolerance {2 * tol:g}): wrong adapter, mask or position?")


def assert_row_near_greedy(model: Any, tokenizer: Any, messages: list[dict[str, str]],
                           tokens: Sequence[int], adapter: str = BASE_ADAPTER,
                           repetition_penalty: float = 1.0, banned: Iterable[int] = (),
                           label: str = "") -> None:
    """One engine row's output is a greedy decode of its own prompt and adapter (the rule)."""
    assert tokens, f"{label}: no tokens to check"
    prompt = prompt_ids(tokenizer, messages)
    logits = teacher_forced_logits(model, prompt, tokens, adapter)
    logits = penalised(logits, prompt, tokens, repetition_penalty, banned)
    assert_near_greedy(logits, tokens, logit_tolerance(model), label or adapter)


def assert_greedy_match(ref_tokens: Sequence[int], ref_logits: torch.Tensor,
                        got_tokens: Sequence[int], got_logits: torch.Tensor, tol: float,
                        label: str = "") -> int:
    """Two greedy decodes of one prompt agree under the rule; returns the steps compared.

    ref_logits, got_logits: [S, V], the logits each run chose its tokens from.
    """
    steps = min(len(ref_tokens), len(got_tokens))
    for s in range(steps):
        diff = float((ref_logits[s] - got_logits[s]).abs().max())
        assert diff <= tol, f"{label}: logits differ by {diff:.4g} at step {s} (tolerance {tol:g})"
        if ref_tokens[s] != got_tokens[s]:
            top2 = ref_logits[s].topk(2).values
            margin = float(top2[0] - top2[1])
            assert margin <= 2 * tol, (f"{label}: tokens part at step {s} where the reference's "
                                       f"top-2 margin is {margin:.4f} (> {2 * tol:g})")
            return s + 1
    return steps
