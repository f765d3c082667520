"""How a suite is scored besides free generation: multiple choice and constrained output.

``suite.yaml`` may add::

    output_type: multiple_choice     # also score each label by log-likelihood (acc, acc_norm)
    choices:                         # optional: what each label reads as (default: the label)
      order_tracking: "order tracking"
    fewshot: {file: fewshot.jsonl}   # solved examples before each item, for choice scoring only
    structured_output:               # the grammar a constrained run decodes under
      json_schema: {type: object, properties: {...}, required: [...]}
      # or: choice: [yes, no]

Generation is always scored as before, so one run shows both. A run with decoding
``constrained`` (or ``both``) evaluates a suite that has ``structured_output`` under that
grammar, reported as its own suite ``<name>:constrained`` next to the free one (see
``decoding``).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from workbench.engine.request import StructuredOutput
from workbench.errors import SuiteError, unknown_name_message
from workbench.eval.fewshot import FewShot, parse_fewshot

OUTPUT_TYPES = ("generate_until", "multiple_choice")


@dataclass(frozen=True)
class SuiteOptions:
    """A suite's scoring options from suite.yaml."""

    # "generate_until" (generation only) or "multiple_choice" (log-likelihood as well).
    output_type: str = "generate_until"
    # Text scored for each label, aligned with the suite's labels (multiple choice).
    choices: tuple[str, ...] = ()
    # Grammar for constrained decoding, None when the suite has none.
    structured: StructuredOutput | None = None
    # Whether this copy of the suite decodes under ``structured``.
    constrained: bool = False
    # Solved examples shown before an item when its choices are scored (see ``fewshot``).
    fewshot: FewShot | None = None

    @property
    def multiple_choice(self) -> bool:
        return self.output_type == "multiple_choice"


def parse_options(path: Path, cfg: dict, lines: dict[str, int], labels: tuple[str, ...],
                  task: str) -> SuiteOptions:
    """The options of one suite.yaml; raises SuiteError naming ``file:line`` and the field."""
    def fail(field: str, message: str) -> None:
        raise SuiteError(f"{path}:{lines.get(field, 1)}: field '{field}': {message}")

    output_type = cfg.get("output_type", "generate_until")
    if output_type not in OUTPUT_TYPES:
        fail("output_type", unknown_name_message("output type", str(output_type), list(OUTPUT_TYPES)))
    choices: tuple[str, ...] = ()
    if output_type == "multiple_choice":
        if task != "classification" or not labels:
            fail("output_type", "multiple_choice needs a classification suite with labels.")
        choices = _choices(cfg.get("choices"), labels, fail)
    elif "choices" in cfg:
        fail("choices", "only a multiple_choice suite takes choices.")
    structured = _structured(cfg.get("structured_output"), fail) \
        if "structured_output" in cfg else None
    fewshot = None
    if "fewshot" in cfg:
        if output_type != "multiple_choice":
            fail("fewshot", "only a multiple_choice suite takes few-shot examples.")
        fewshot = parse_fewshot(path.parent, cfg["fewshot"], labels, fail)
    return SuiteOptions(output_type, choices, structured, fewshot=fewshot)


def _choices(raw: object, labels: tuple[str, ...], fail) -> tuple[str, ...]:
    if raw is None:
        return labels
    if isinstance(raw, list):
        if len(raw) != len(labels):
            fail("choices", f"a list of choices needs one per label ({len(labels)}), not {len(raw)}.")
        texts = raw
    elif isinstance(raw, dict):
        if set(raw) != set(labels):
            missing, extra = sorted(set(labels) - set(raw)), sorted(set(raw) - set(labels))
            fail("choices", "must name every label once"
                 + (f"; missing: {', '.join(missing)}" if missing else "")
                 + (f"; not labels: {', '.join(map(str, extra))}" if extra else "") + ".")
        texts = [raw[label] for label in labels]
    else:
        fail("choices", "must be a list (one per label) or a mapping label -> text.")
    if not all(isinstance(t, str) and t.strip() for t in texts):
        fail("choices", "every choice must be a non-empty string.")
    if len(set(texts)) != len(texts):
        fail("choices", "two labels have the same choice text.")
    return tuple(texts)


def _structured(raw: object, fail) -> StructuredOutput:
    if not isinstance(raw, dict) or len(raw) != 1 or next(iter(raw)) not in ("json_schema", "choice"):
        fail("structured_output", "must be a mapping with one key: json_schema or choice.")
    if "json_schema" in raw:
        if not isinstance(raw["json_schema"], dict) or not raw["json_schema"]:
            fail("structured_output", "json_schema must be a JSON schema object.")
        return StructuredOutput(json_schema=json.dumps(raw["json_schema"], ensure_ascii=False))
    choice = raw["choice"]
    if not isinstance(choice, list) or not choice or \
            not all(isinstance(c, str) and c for c in choice):
        fail("structured_output", "choice must be a non-empty list of non-empty strings.")
    return StructuredOutput(choice=tuple(choice))
