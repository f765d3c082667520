"""Which ``adapter_config.json`` settings may be served on the one shared base.

Every served variant shares one copy of the base weights, so an adapter must only *add*
LoRA matrices next to them. Some peft settings do more: PiSSA, OLoRA, CorDA, LoftQ and EVA
initialisation rewrite the base layer's weight while the adapter is attached
(``W <- W - A @ B``), ``layer_replication`` duplicates base layers, ``modules_to_save`` and
``trainable_token_indices`` replace base modules or embedding rows, a ``bias`` other than
``"none"`` carries base-layer biases. This module is a whitelist: each known key has a rule
for the values it may take, and a key not listed here is accepted only while it holds an
inert value (``null``, ``false``, ``{}``, ``[]``, ``""``), so a setting added by a later
peft release is refused until someone has checked what it does.

peft matches string ``target_modules``, ``exclude_modules``, ``layers_pattern`` and the
keys of ``rank_pattern`` / ``alpha_pattern`` as regular expressions against every module
name; :func:`regex_problem` refuses patterns that could backtrack catastrophically (nested or
alternated unbounded repeats, back-references, too many unbounded repeats, very long).
"""
from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field

try:  # Python 3.11+
    import re._parser as sre_parse  # type: ignore[import-not-found]
    import re._constants as sre_const  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - older interpreters
    import sre_constants as sre_const  # type: ignore[no-redef]
    import sre_parse  # type: ignore[no-redef]

from workbench.errors import AdapterError

# init_lora_weights values that leave the base layer as it is.
SAFE_INITS = (True, False, "gaussian")
# Why a value is refused, for the init methods that write into the base weights.
BASE_WRITING_INITS = ("pissa", "olora", "corda", "loftq", "eva")
MAX_REGEX_CHARS = 256
MAX_UNBOUNDED_REPEATS = 4


def _default_max_rank() -> int:
    try:
        return int(os.environ.get("WORKBENCH_MAX_LORA_RANK", "64"))
    except ValueError:
        return 64


@dataclass(frozen=True)
class AdapterLimits:
    """Bounds on what a served adapter may be (vLLM's ``max_lora_rank`` and size caps)."""

    # Highest LoRA rank accepted, in the config and in every tensor (WORKBENCH_MAX_LORA_RANK).
    max_rank: int = field(default_factory=_default_max_rank)
    # Size of adapter_model.safetensors.
    max_weights_bytes: int = 512 << 20
    # Tensors in the safetensors file.
    max_tensors: int = 4096


def _inert(value: object) -> bool:
    return value is None or value is False or value in ({}, [], "")


Rule = Callable[[object, AdapterLimits], str | None]


def _bool(value: object, _: AdapterLimits) -> str | None:
    return None if isinstance(value, bool) else "must be true or false"


def _str_or_none(value: object, _: AdapterLimits) -> str | None:
    return None if value is None or isinstance(value, str) else "must be a string"


def _must_be_false(reason: str) -> Rule:
    return lambda v, _: None if _inert(v) else reason


def _rank(value: object, limits: AdapterLimits) -> str | None:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        return "needs a positive integer rank"
    if value > limits.max_rank:
        return f"rank {value} is above the served maximum of {limits.max_rank}"
    return None


def _number(lo: float, hi: float) -> Rule:
    def rule(value: object, _: AdapterLimits) -> str | None:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and lo <= value <= hi
        return None if ok else f"must be a number between {lo:g} and {hi:g}"
    return rule


def _init(value: object, _: AdapterLimits) -> str | None:
    if isinstance(value, bool) or value == "gaussian":
        return None
    text = str(value).lower()
    if any(text.startswith(m) for m in BASE_WRITING_INITS):
        return (f"{value!r} initialisation rewrites the base layer's weights when the adapter is "
                "attached, and the base is shared by every variant; convert the adapter to a plain "
                "LoRA (peft's path_initial_model_for_weight_conversion) or retrain it")
    return f"{value!r} is not one of {', '.join(repr(s) for s in SAFE_INITS)}"


def _bias(value: object, _: AdapterLimits) -> str | None:
    return None if value in (None, "none") else (
        f"{value!r} stores base-layer biases, which would replace the shared base's; use 'none'")


def _pattern(value: object, _: AdapterLimits) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return regex_problem(value)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return next((p for p in (regex_problem(v) for v in value) if p), None)
    return "must be a string or a list of strings"


def _targets(value: object, _: AdapterLimits) -> str | None:
    if isinstance(value, str):
        return None if value == "all-linear" else regex_problem(value)
    if isinstance(value, list) and value and all(isinstance(v, str) and 0 < len(v) <= 256 for v in value):
        return None  # a list is matched by module-name suffix, not as regular expressions
    return "must be 'all-linear', a regular expression, or a non-empty list of module names"


def _pattern_dict(value_rule: Rule) -> Rule:
    def rule(value: object, limits: AdapterLimits) -> str | None:
        if value is None:
            return None
        if not isinstance(value, dict):
            return "must be an object"
        for key, v in value.items():
            problem = regex_problem(str(key)) or value_rule(v, limits)
            if problem:
                return f"entry {key!r}: {problem}"
        return None
    return rule


def _layers(value: object, _: AdapterLimits) -> str | None:
    ok = value is None or (isinstance(value, int) and not isinstance(value, bool)) or (
        isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool) for v in value))
    return None if ok else "must be a layer index or a list of them"


def _dict_or_none(value: object, _: AdapterLimits) -> str | None:
    return None if value is None or isinstance(value, dict) else "must be an object"


def _int(value: object, _: AdapterLimits) -> str | None:
    return None if isinstance(value, int) and not isinstance(value, bool) else "must be an integer"


RULES: dict[str, Rule] = {
    "peft_type": lambda v, _: None if str(v).upper() == "LORA" else "only LoRA adapters are supported",
    "r": _rank,
    "lora_alpha": _number(1e-6, 1e6),
    "lora_dropout": _number(0.0, 1.0),
    "target_modules": _targets,
    "exclude_modules": _pattern,
    "layers_to_transform": _layers,
    "layers_pattern": _pattern,
    "rank_pattern": _pattern_dict(_rank),
    "alpha_pattern": _pattern_dict(_number(1e-6, 1e6)),
    "init_lora_weights": _init,
    "bias": _bias,
    "use_rslora": _bool,
    "inference_mode": _bool,
    "fan_in_fan_out": _must_be_false("is for Conv1D layers, which this engine's bases do not have"),
    "base_model_name_or_path": _str_or_none,
    "revision": _str_or_none,
    "task_type": _str_or_none,
    "peft_version": _str_or_none,
    "auto_mapping": _dict_or_none,
    "runtime_config": _dict_or_none,
    "megatron_core": _str_or_none,
    "qalora_group_size": _int,
    "ensure_weight_tying": _bool,
    "modules_to_save": _must_be_false(
        "replaces base modules with trained copies, which cannot share one copy of the base; "
        "retrain without modules_to_save"),
    "layer_replication": _must_be_false("duplicates base layers, changing the shared base model"),
    "trainable_token_indices": _must_be_false("replaces rows of the base's embedding matrix"),
    "target_parameters": _must_be_false("wraps base parameters directly instead of adding LoRA layers"),
    "loftq_config": _must_be_false("LoftQ initialisation rewrites the base layer's weights"),
    "corda_config": _must_be_false("CorDA initialisation rewrites the base layer's weights"),
    "eva_config": _must_be_false("EVA initialisation runs on training data when the adapter is attached"),
    "use_dora": _must_be_false("DoRA rescales the base layer's weight per adapter, which cannot be "
                               "stacked with other adapters for mixed batches; retrain as plain LoRA"),
    "lora_bias": _must_be_false("adds a trained bias vector; only plain LoRA A/B matrices are served"),
    "use_qalora": _must_be_false("QA-LoRA needs a quantised base of its own"),
    "alora_invocation_tokens": _must_be_false("activated LoRA changes which tokens the adapter "
                                              "applies to, which the mixed-batch engine does not do"),
    "megatron_config": _must_be_false("Megatron parallel layers are not served"),
    "arrow_config": _must_be_false("Arrow routing mixes adapters inside a row"),
}


def check_config(config: dict, folder_name: str, limits: AdapterLimits) -> None:
    """Raise AdapterError for the first key whose value is not on the whitelist."""
    if "r" not in config:
        raise AdapterError(f"{folder_name}: adapter_config.json needs a positive integer rank 'r'.")
    for key, value in config.items():
        rule = RULES.get(key)
        if rule is None:
            problem = None if _inert(value) else (
                "is not a setting this server knows to leave the base untouched")
        else:
            problem = rule(value, limits)
        if problem:
            raise AdapterError(f"{folder_name}: adapter_config.json '{key}' = {_short(value)} refused: "
                               f"{problem}.")


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


# ---- regular expressions ---------------------------------------------------------------------
def regex_problem(pattern: str) -> str | None:
    """Why ``pattern`` could be slow or is invalid (None: it is safe to match)."""
    if len(pattern) > MAX_REGEX_CHARS:
        return f"regular expressions are limited to {MAX_REGEX_CHARS} characters"
    try:
        parsed = sre_parse.parse(pattern)
    except re.error as exc:
        return f"not a valid regular expression ({exc})"
    counts = {"unbounded": 0}
    problem = _walk(list(parsed), inside_repeat=False, counts=counts)
    if problem is None and counts["unbounded"] > MAX_UNBOUNDED_REPEATS:
        problem = (f"{counts['unbounded']} unbounded repeats (at most {MAX_UNBOUNDED_REPEATS}) "
                   "make matching slow")
    return problem


_REPEATS = {sre_const.MAX_REPEAT, sre_const.MIN_REPEAT}
if hasattr(sre_const, "POSSESSIVE_REPEAT"):
    _REPEATS.add(sre_const.POSSESSIVE_REPEAT)


def _walk(items: list, inside_repeat: bool, counts: dict[str, int]) -> str | None:
    for op, av in items:
        if op in _REPEATS:
            lo, hi, sub = av
            many = hi == sre_const.MAXREPEAT or hi > 1
            if many and inside_repeat:
                return "a repeat inside a repeat can backtrack catastrophically"
            if hi == sre_const.MAXREPEAT:
                counts["unbounded"] += 1
            problem = _walk(list(sub), inside_repeat or many, counts)
        elif op == sre_const.SUBPATTERN:
            problem = _walk(list(av[-1]), inside_repeat, counts)
        elif op == sre_const.BRANCH:
            if inside_repeat:
                return "alternatives inside a repeat can backtrack catastrophically"
            problem = next((p for p in (_walk(list(b), inside_repeat, counts) for b in av[1]) if p), None)
        elif op in (sre_const.GROUPREF, getattr(sre_const, "GROUPREF_EXISTS", None)):
            return "back-references are not allowed"
        elif op in (sre_const.ASSERT, sre_const.ASSERT_NOT):
            problem = _walk(list(av[1]), inside_repeat, counts)
        else:
            problem = None
        if problem:
            return problem
    return None
