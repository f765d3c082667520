"""Log-likelihood multiple-choice scoring: batched, cached, per-row adapters == one row at a time."""
from __future__ import annotations

import pytest
import torch

from workbench.engine import loglik
from workbench.engine.loglik import ChoiceItem
from workbench.errors import InputError

QUESTIONS = ["Where is my parcel?", "¿Puedo devolver los zapatos?", "我的退款什么时候到？"]
CHOICES = ("order_tracking", "return_policy", "refund status please", "x")


def items(adapters: list[str]) -> list[ChoiceItem]:
    return [ChoiceItem([{"role": "system", "content": "Route the message."},
                        {"role": "user", "content": q}], CHOICES, a)
            for q, a in zip(QUESTIONS, adapters)]


def reference(engine, item: ChoiceItem) -> list[tuple[float, int]]:
    """Each choice alone: one unpadded forward over prompt + choice, the adapter set active."""
    runner, tok = engine.runner, engine.runner.loaded.tokenizer
    text = tok.apply_chat_template(item.messages, add_generation_prompt=True, tokenize=False)
    prompt = tok(text, add_special_tokens=False)["input_ids"]
    out = []
    for choice in item.choices:
        whole = tok(text + choice, add_special_tokens=False)["input_ids"]
        assert whole[:len(prompt)] == prompt
        ids = torch.tensor([whole])
        model = runner.model
        with torch.inference_mode():
            if hasattr(model, "peft_config") and item.adapter == "__base__":
                with model.disable_adapter():
                    logits = model(input_ids=ids).logits
            else:
                if hasattr(model, "peft_config"):
                    model.set_adapter(item.adapter)
                logits = model(input_ids=ids).logits
        lp = torch.log_softmax(logits[0, :-1].float(), -1)
        tgt = ids[0, 1:]
        total = lp.gather(-1, tgt.unsqueeze(-1)).squeeze(-1)[len(prompt) - 1:].sum()
        out.append((float(total), len(whole) - len(prompt)))
    return out


def test_batched_scores_match_one_row_at_a_time(engine) -> None:
    batch = items(["__base__"] * 3)
    got = engine.call_between_batches(lambda: loglik.score(engine.runner, batch, max_rows=7))
    for item, res in zip(batch, got):
        ref = reference(engine, item)
        assert list(res.n_tokens) == [n for _, n in ref]
        assert res.logprobs == pytest.approx([lp for lp, _ in ref], abs=2e-3)
    assert all(lp < 0 for r in got for lp in r.logprobs)


def test_mixed_adapter_rows_match_each_adapter_alone(engine, tiny_loaded, make_adapter) -> None:
    paths = {n: make_adapter(tiny_loaded, n, seed=s) for n, s in (("a1", 1), ("a2", 2))}
    for name, path in paths.items():
        engine.load_adapter(name, path)
    batch = items(["a1", "__base__", "a2"])
    got = engine.call_between_batches(lambda: loglik.score(engine.runner, batch))
    refs = [reference(engine, it) for it in batch]
    for res, ref in zip(got, refs):
        assert res.logprobs == pytest.approx([lp for lp, _ in ref], abs=2e-3)
    # The adapters really change the scores, so a row run on the wrong adapter would show.
    same_q = engine.call_between_batches(lambda: loglik.score(
        engine.runner, [ChoiceItem(batch[0].messages, CHOICES, a) for a in ("a1", "__base__")]))
    assert abs(same_q[0].logprobs[0] - same_q[1].logprobs[0]) > 1e-2


def test_best_and_best_norm() -> None:
    s = loglik.ChoiceScores(logprobs=(-3.0, -4.0), n_tokens=(1, 4))
    assert s.best == 0 and s.best_norm == 1


def test_unknown_adapter_and_empty_choices_are_refused(engine) -> None:
    with pytest.raises(InputError, match="not loaded"):
        loglik.score(engine.runner, items(["nope"] * 1))
    with pytest.raises(InputError, match="at least one choice"):
        loglik.score(engine.runner, [ChoiceItem([{"role": "user", "content": "hi"}], ())])


def few_shot_items(adapters: list[str]) -> list[ChoiceItem]:
    """Prompts that share a long start (a system message and solved examples), as few-shot
    suites build them."""
    shots = []
    for q, label in (("My parcel is late.", "order_tracking"), ("I want my money back.", "refund status please"),
                     ("Can I send the shoes back?", "return_policy")) * 3:
        shots += [{"role": "user", "content": f'Message: "{q}"'}, {"role": "assistant", "content": label}]
    return [ChoiceItem([{"role": "system", "content": "Route the message."}, *shots,
                        {"role": "user", "content": f'Message: "{q}"'}], CHOICES, a)
            for q, a in zip(QUESTIONS, adapters)]


def test_shared_prompt_start_is_computed_once_and_scores_the_same(engine, tiny_loaded, make_adapter) -> None:
    engine.load_adapter("a1", make_adapter(tiny_loaded, "a1", seed=1))
    batch = few_shot_items(["__base__", "a1", "__base__"])
    hits_before = engine.runner.prefixes.stats.hits
    got = engine.call_between_batches(lambda: loglik.score(engine.runner, batch, max_rows=8))
    for item, res in zip(batch, got):  # in the caller's order, whatever the grouping
        assert res.logprobs == pytest.approx([lp for lp, _ in reference(engine, item)], abs=2e-3)
    again = engine.call_between_batches(lambda: loglik.score(engine.runner, batch, max_rows=8))
    assert engine.runner.prefixes.stats.hits > hits_before  # the second call reused the prefix
    for r, g in zip(again, got):
        assert r.logprobs == pytest.approx(g.logprobs, abs=1e-4)


def test_choice_rows_in_small_copy_groups_score_the_same(engine, monkeypatch) -> None:
    batch = items(["__base__"] * 3)
    whole = engine.call_between_batches(lambda: loglik.score(engine.runner, batch))
    monkeypatch.setattr(loglik, "COPY_ROW_TOKENS", 1)  # one choice row per copy of its prompt
    grouped = engine.call_between_batches(lambda: loglik.score(engine.runner, batch))
    for a, b, item in zip(whole, grouped, batch):
        assert b.logprobs == pytest.approx(a.logprobs, abs=1e-4)
        assert b.logprobs == pytest.approx([lp for lp, _ in reference(engine, item)], abs=2e-3)
