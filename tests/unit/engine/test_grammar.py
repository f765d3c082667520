"""Grammar-constrained decoding: every output of a manual decode loop follows the grammar."""
from __future__ import annotations

import json

import pytest
import torch

from workbench.engine import grammar
from workbench.engine.grammar import compile_constraint
from workbench.engine.request import StructuredOutput
from workbench.errors import InputError

VERDICT = {"type": "object",
           "properties": {"eligible": {"type": "boolean"},
                          "days": {"type": "integer", "minimum": 0, "maximum": 365},
                          "payer": {"enum": ["customer", "store"]}},
           "required": ["eligible", "days", "payer"], "additionalProperties": False}
SPEC = StructuredOutput(json_schema=json.dumps(VERDICT))
PROMPTS = ["Can I return my shoes?", "¿Puedo devolver esto?", "我可以退货吗？", "hi", "Rückgabe?"]


def decode(loaded, spec: StructuredOutput, prompt: str, temperature: float = 0.0,
           seed: int = 0, max_new: int = 60, vocab_pad: int = 0) -> tuple[str, bool]:
    """A plain decode loop on the tiny model with the row constraint applied at every step."""
    tok, model = loaded.tokenizer, loaded.model
    vocab = model.config.vocab_size
    rc = compile_constraint(spec, tok, vocab)
    ids = tok.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True,
                                  return_tensors="pt", return_dict=True)["input_ids"]  # [1, T]
    gen = torch.Generator().manual_seed(seed)
    out: list[int] = []
    with torch.inference_mode():
        for _ in range(max_new):
            logits = model(input_ids=ids).logits[0, -1].float()  # [V]
            if vocab_pad:
                logits = torch.cat([logits, torch.full((vocab_pad,), 50.0)])
            logits = logits.clone()
            rc.mask_logits(logits)
            if temperature > 0:
                probs = torch.softmax(logits / temperature, -1)
                token = int(torch.multinomial(probs, 1, generator=gen))
            else:
                token = int(logits.argmax())
            rc.accept(token)
            if rc.is_finished():
                break
            out.append(token)
            ids = torch.cat([ids, torch.tensor([[token]])], dim=1)
    return tok.decode(out), rc.is_finished()


def assert_verdict(text: str) -> None:
    obj = json.loads(text)
    assert set(obj) == {"eligible", "days", "payer"}
    assert isinstance(obj["eligible"], bool)
    assert isinstance(obj["days"], int) and not isinstance(obj["days"], bool)
    assert 0 <= obj["days"] <= 365
    assert obj["payer"] in ("customer", "store")


@pytest.mark.parametrize("prompt", PROMPTS)
def test_greedy_output_is_always_a_valid_verdict(tiny_loaded, prompt: str) -> None:
    text, finished = decode(tiny_loaded, SPEC, prompt)
    assert finished
    assert_verdict(text)


def test_sampled_output_is_always_a_valid_verdict(tiny_loaded) -> None:
    # Hot sampling on a random model wanders everywhere the grammar lets it.
    for seed in range(12):
        text, finished = decode(tiny_loaded, SPEC, PROMPTS[seed % len(PROMPTS)], 2.0, seed)
        assert finished, text
        assert_verdict(text)


def test_padded_vocabulary_rows_are_masked(tiny_loaded) -> None:
    text, finished = decode(tiny_loaded, SPEC, "hi", vocab_pad=32)
    assert finished
    assert_verdict(text)


def test_choice_list_output_is_one_of_the_choices(tiny_loaded) -> None:
    choices = ("eligible", "not eligible", "返品可", 'say "no"')
    spec = StructuredOutput(choice=choices)
    for seed in range(6):
        text, finished = decode(tiny_loaded, spec, PROMPTS[seed % len(PROMPTS)], 2.0, seed)
        assert finished and text in choices


def test_compiled_grammars_are_cached(tiny_loaded) -> None:
    grammar._compiled.clear()
    vocab = tiny_loaded.model.config.vocab_size
    compile_constraint(SPEC, tiny_loaded.tokenizer, vocab)
    compile_constraint(SPEC, tiny_loaded.tokenizer, vocab)
    assert len(grammar._compiled) == 1
    compile_constraint(StructuredOutput(choice=("a", "b")), tiny_loaded.tokenizer, vocab)
    assert len(grammar._compiled) == 2


@pytest.mark.parametrize("spec, match", [
    (StructuredOutput(json_schema="{not json"), "not valid JSON"),
    (StructuredOutput(json_schema="[1, 2]"), "must be a JSON object"),
    (StructuredOutput(json_schema='{"type": "no-such-type"}'), "cannot be used"),
    (StructuredOutput(), "exactly one"),
    (StructuredOutput(json_schema="{}", choice=("a",)), "exactly one"),
    (StructuredOutput(choice=("a", "")), "non-empty"),
])
def test_bad_specs_are_refused(tiny_loaded, spec: StructuredOutput, match: str) -> None:
    with pytest.raises(InputError, match=match):
        compile_constraint(spec, tiny_loaded.tokenizer, tiny_loaded.model.config.vocab_size)


def test_a_forbidden_token_is_refused(tiny_loaded) -> None:
    tok = tiny_loaded.tokenizer
    rc = compile_constraint(SPEC, tok, tiny_loaded.model.config.vocab_size)
    logits = torch.zeros(tiny_loaded.model.config.vocab_size)
    rc.mask_logits(logits)
    forbidden = int(torch.nonzero(torch.isinf(logits))[0])
    with pytest.raises(InputError, match="not allowed"):
        rc.accept(forbidden)
