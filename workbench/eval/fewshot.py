"""Few-shot prompts for log-likelihood choice scoring (lm-evaluation-harness's ``num_fewshot``).

A 135M-parameter model scored zero-shot on twelve intents picks the same label for every
message (the label's prior outweighs the message), so ``acc`` sits at chance and says
nothing. Shown a handful of solved examples first, the same model's choice follows the
message. ``suite.yaml`` names the examples::

    fewshot:
      file: fewshot.jsonl            # in the suite folder: {"text": ..., "label": ..., "lang": ...}
      template: 'Message: "{text}"'  # each example's user turn (and the item's)
      preamble: "Intents: {labels}"  # optional, put before the first example

``lang`` is optional. Where the file has examples in an item's language, only those come
before it: a small model matches a message against examples in its own script and words far
better than against English ones (on held-out training rows: 37% against 20% with twelve
English examples). An item whose language has none gets the examples without ``lang``, or,
when every example has one, all of them.

The examples come from the training data, never from the suite's items (the leak check
covers them), and they go into the suite's hash. Only the choice scoring uses them:
generation keeps the suite's zero-shot prompt, so its scores stay comparable across runs.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

Fail = Callable[[str, str], None]


@dataclass(frozen=True)
class FewShot:
    """Solved examples shown before an item when its choices are scored."""

    # (text, label, lang or "") triples, in file order.
    examples: tuple[tuple[str, str, str], ...]
    # User turn of each example and of the item, with {text}.
    template: str
    # Text before the first example, with {labels} ("" for none).
    preamble: str
    # The examples file's bytes, for the suite hash.
    raw: bytes

    def for_lang(self, lang: str) -> list[tuple[str, str, str]]:
        """The examples shown before an item in ``lang`` (see the module's docstring)."""
        return [e for e in self.examples if e[2] == lang] or \
            [e for e in self.examples if not e[2]] or list(self.examples)

    def turns(self, text: str, labels: tuple[str, ...], answer: Callable[[str], str],
              lang: str = "") -> list[dict[str, str]]:
        """Example turns then the item's user turn; ``answer`` maps a label to its choice text."""
        out: list[dict[str, str]] = []
        for text_i, label, _ in self.for_lang(lang):
            out += [{"role": "user", "content": self.template.format(text=text_i)},
                    {"role": "assistant", "content": answer(label)}]
        out.append({"role": "user", "content": self.template.format(text=text)})
        if self.preamble:
            first = self.preamble.format(labels=", ".join(labels))
            out[0] = {"role": "user", "content": f"{first}\n\n{out[0]['content']}"}
        return out


def parse_fewshot(folder: Path, raw: object, labels: tuple[str, ...], fail: Fail) -> FewShot:
    """The ``fewshot`` block of a suite.yaml; ``fail(field, message)`` raises."""
    if not isinstance(raw, dict) or not isinstance(raw.get("file"), str):
        fail("fewshot", "must be a mapping with at least 'file' (a JSONL file in the suite folder).")
    template = raw.get("template", 'Message: "{text}"')
    if not isinstance(template, str) or "{text}" not in template:
        fail("fewshot", "template must be a string containing {text}.")
    preamble = raw.get("preamble", "")
    if not isinstance(preamble, str):
        fail("fewshot", "preamble must be a string.")
    path = folder / raw["file"]
    if not path.is_file():
        fail("fewshot", f"{path} does not exist.")
    data = path.read_bytes()
    examples = []
    for n, line in enumerate(data.decode("utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            text, label, lang = str(row["text"]), str(row["label"]), str(row.get("lang") or "")
        except (ValueError, KeyError, TypeError, AttributeError):
            fail("fewshot", f"{path}:{n}: each line needs a JSON object with 'text' and 'label'"
                            " (and optionally 'lang').")
        if label not in labels:
            fail("fewshot", f"{path}:{n}: label '{label}' is not one of the suite's labels.")
        examples.append((text, label, lang))
    if not examples:
        fail("fewshot", f"{path} holds no examples.")
    return FewShot(tuple(examples), template, preamble, data)
