"""Eval suites as data: a folder with ``suite.yaml`` and ``items.jsonl``.

A ``faq`` or ``policy`` grounding reads the store's FAQ or policy pack from ``workbench/data/policy/``,
unless the suite folder holds its own ``faq.yaml`` or ``policies.yaml``.

Loading validates everything up front and reports ``file:line`` with the field at fault, so
a bad line never surfaces halfway through a run. A suite's hash (sha256 of its files) goes
into the run record; ``--resume`` refuses a suite that changed since.

Splits: ``splits: {dev: items.jsonl, test: test.jsonl}`` in ``suite.yaml`` gives a suite a
``dev`` split (tuned on: prompts, few-shot layouts, training choices) and a ``test`` split
(written in other shapes, never tuned or trained near). Each split loads as its own suite,
named ``<name>:<split>`` in runs, reports and cards; a folder without ``splits`` is one set,
named plainly.
"""
from __future__ import annotations

import hashlib
import json
import string
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import yaml

from workbench.config import eval_sets_root
from workbench.errors import SuiteError, UnknownNameError, unknown_name_message
from workbench.eval.metrics import get_metric
from workbench.eval.options import SuiteOptions, parse_options
from workbench.eval.schema import EvalItem, Expected, ScoreContext
from workbench.eval.scorers import get_scorer
from workbench.domain.langs import LANGUAGES, REGIONS, language_name
from workbench.domain.policy import faq_file, load_policies, policies_file, policy_text
from workbench.domain.prompts import build_prompt

TASKS = ("classification", "freeform", "verdict")
GROUNDINGS = ("none", "faq", "policy")
PLACEHOLDERS = ("text", "labels", "lang_name")
REQUIRED = ("name", "task", "prompt_template", "scorers", "metrics")
ITEM_REQUIRED = ("id", "lang", "text", "expected")
PAYERS = ("customer", "store")


@dataclass(frozen=True)
class Suite:
    """A validated suite, ready to build prompts for its items."""

    # Suite name from suite.yaml.
    name: str
    # One-line description for pickers.
    description: str
    # "classification", "freeform" or "verdict".
    task: str
    # "none", "faq" or "policy": what is added to the system prompt.
    grounding: str
    # Labels for classification suites (empty otherwise).
    labels: tuple[str, ...]
    # System prompt, before grounding.
    system_prompt: str
    # User message template with {text}, {labels}, {lang_name}.
    prompt_template: str
    # Scorer names, in order; the first content scorer defines accuracy.
    scorers: tuple[str, ...]
    # Metric names to report.
    metrics: tuple[str, ...]
    # Generation cap per answer.
    max_new_tokens: int
    # The items, in file order.
    items: tuple[EvalItem, ...]
    # The suite folder.
    path: Path
    # sha256 over suite.yaml, items.jsonl and the grounding file.
    hash: str
    # FAQ grounding text (faq suites), "" otherwise.
    faq_text: str = ""
    # Policies file used for policy grounding.
    policies_path: Path | None = None
    # Multiple-choice and constrained-output settings (see ``options``).
    options: SuiteOptions = SuiteOptions()
    # The split these items are ("dev", "test"), "" for a suite without splits.
    split: str = ""

    @property
    def base_name(self) -> str:
        """The suite's name without its split or decoding suffix."""
        return self.name.split(":", 1)[0]

    def grounding_text(self, item: EvalItem) -> str:
        if self.grounding == "faq":
            return self.faq_text
        if self.grounding == "policy" and item.region:
            return policy_text(item.region, self.policies_path)
        return ""

    def messages(self, item: EvalItem) -> list[dict[str, str]]:
        """Chat messages for one item: system prompt + grounding, then the filled template."""
        user = self.prompt_template.format(text=item.text, labels=", ".join(self.labels),
                                           lang_name=language_name(item.lang)).strip()
        return build_prompt([{"role": "user", "content": user}], persona=self.system_prompt,
                            grounding=self.grounding_text(item))

    def choice_messages(self, item: EvalItem) -> list[dict[str, str]]:
        """The prompt its choices are scored after: the few-shot examples, when the suite has
        them, between the system message and the item."""
        shots = self.options.fewshot
        if shots is None:
            return self.messages(item)
        answer = dict(zip(self.labels, self.options.choices or self.labels)).__getitem__
        return self.messages(item)[:-1] + shots.turns(item.text, self.labels, answer, item.lang)

    def context(self, item: EvalItem) -> ScoreContext:
        return ScoreContext(lang=item.lang, expected=item.expected, labels=self.labels)

    def sample(self, limit: int | None) -> list[EvalItem]:
        """``limit`` items spread over languages and regions (an item that is among the first
        of its language and of its region comes first); the same limit gives the same items."""
        if limit is None or limit >= len(self.items):
            return list(self.items)
        seen: Counter = Counter()
        ranked = []
        for idx, item in enumerate(self.items):
            seen["lang", item.lang] += 1
            seen["region", item.region] += 1 if item.region else 0
            rank = max(seen["lang", item.lang], seen["region", item.region])
            ranked.append((rank, idx, item))
        return [item for _, _, item in sorted(ranked, key=lambda r: r[:2])[:max(limit, 0)]]

    def item(self, item_id: str) -> EvalItem:
        for it in self.items:
            if it.id == item_id:
                return it
        raise UnknownNameError(f"item of suite {self.name}", item_id, [i.id for i in self.items])


# ---- finding suites --------------------------------------------------------------------
def list_suites(root: Path | None = None) -> list[str]:
    """Names of the suite folders under ``workbench/data/eval_sets/``."""
    root = root or eval_sets_root()
    return sorted(p.name for p in root.iterdir() if (p / "suite.yaml").is_file()) if root.is_dir() else []


def suite_dir(name_or_path: str | Path) -> Path:
    """A suite folder from a name under workbench/data/eval_sets/ or a path (to the folder or its suite.yaml)."""
    path = Path(name_or_path).expanduser()
    if path.name == "suite.yaml" and path.is_file():
        return path.parent
    if (path / "suite.yaml").is_file():
        return path
    named = eval_sets_root() / str(name_or_path)
    if "/" not in str(name_or_path) and (named / "suite.yaml").is_file():
        return named
    if path.is_dir():
        raise SuiteError(f"{path} has no suite.yaml.")
    raise UnknownNameError("suite", str(name_or_path), list_suites())


def split_names(name_or_path: str | Path) -> tuple[str, ...]:
    """The splits a suite declares, in order (dev first); () for a suite without splits."""
    cfg_path = suite_dir(name_or_path) / "suite.yaml"
    cfg, lines = _parse_yaml(cfg_path, _read(cfg_path))
    return tuple(_splits(cfg_path, cfg, lines))


def split_of(recorded: str) -> str | None:
    """The split in a suite name as runs record it (``regional-policy:test:constrained``)."""
    parts = recorded.split(":")
    return parts[1] if len(parts) > 1 and parts[1] != "constrained" else None


def load_splits(name_or_path: str | Path, which: str | None = None) -> list[Suite]:
    """Each split of a suite (``which`` None: all of them), or the suite itself without splits."""
    names = split_names(name_or_path)
    if which is None and names:
        return [load_suite(name_or_path, s) for s in names]
    return [load_suite(name_or_path, which)]


def _splits(path: Path, cfg: dict, lines: dict[str, int]) -> dict[str, str]:
    splits = cfg.get("splits") or {}
    if not isinstance(splits, dict) or not all(
            isinstance(k, str) and isinstance(v, str) and v for k, v in splits.items()):
        raise SuiteError(f"{path}:{lines.get('splits', 1)}: field 'splits': must map split "
                         "names to item files, e.g. {dev: items.jsonl, test: test.jsonl}.")
    return splits


def load_suite(name_or_path: str | Path, split: str | None = None) -> Suite:
    """Load and validate a suite (``split`` None: its first split, when it declares any);
    raises SuiteError with ``file:line`` on any problem."""
    folder = suite_dir(name_or_path)
    cfg_path = folder / "suite.yaml"
    raw_cfg = _read(cfg_path)
    cfg, lines = _parse_yaml(cfg_path, raw_cfg)
    _check_config(cfg_path, cfg, lines)
    splits = _splits(cfg_path, cfg, lines)
    if split is not None and split not in splits:
        raise UnknownNameError(f"split of suite {cfg['name']}", split, list(splits))
    split = split or next(iter(splits), "")
    items_path = folder / splits.get(split, "items.jsonl")
    options = parse_options(cfg_path, cfg, lines, tuple(cfg.get("labels") or ()), cfg["task"])
    if not items_path.is_file():
        raise SuiteError(f"{items_path}: missing; a suite needs one JSON item per line.")
    raw_items = _read(items_path)
    grounding = cfg.get("grounding", "none")
    faq_text, extra, policies = "", b"", None
    if grounding == "faq":
        faq_text, extra = _faq(folder / "faq.yaml" if (folder / "faq.yaml").is_file() else faq_file())
    elif grounding == "policy":
        policies = folder / "policies.yaml" if (folder / "policies.yaml").is_file() else policies_file()
        extra = policies.read_bytes() if policies.is_file() else b""
    labels = tuple(cfg.get("labels") or ())
    items = _parse_items(items_path, raw_items, labels, grounding, policies,
                         "verdict" in cfg["scorers"])
    if options.fewshot is not None:
        extra += b"\0" + options.fewshot.raw
    digest = hashlib.sha256(raw_cfg + b"\0" + raw_items + b"\0" + extra).hexdigest()
    return Suite(name=str(cfg["name"]) + (f":{split}" if split else ""),
                 description=str(cfg.get("description", "")).strip(),
                 task=cfg["task"], grounding=grounding, labels=labels,
                 system_prompt=str(cfg.get("system_prompt") or ""),
                 prompt_template=str(cfg["prompt_template"]), scorers=tuple(cfg["scorers"]),
                 metrics=tuple(cfg["metrics"]), max_new_tokens=int(cfg.get("max_new_tokens", 128)),
                 items=items, path=folder, hash=digest, faq_text=faq_text, policies_path=policies,
                 options=options, split=split)


# ---- suite.yaml ------------------------------------------------------------------------
def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise SuiteError(f"{path}: cannot read ({exc.strerror}).") from exc


def _parse_yaml(path: Path, raw: bytes) -> tuple[dict, dict[str, int]]:
    """The mapping plus the line of each top-level key, for error messages."""
    try:
        text = raw.decode("utf-8")
        node = yaml.compose(text)
        data = yaml.safe_load(text)
    except UnicodeDecodeError as exc:
        raise SuiteError(f"{path}: not UTF-8 ({exc.reason}).") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise SuiteError(f"{where}: invalid YAML: {getattr(exc, 'problem', exc)}.") from exc
    if not isinstance(data, dict):
        raise SuiteError(f"{path}:1: suite.yaml must be a mapping of fields.")
    lines: dict[str, int] = {}
    for key, value in (node.value if node is not None else []):
        lines[key.value] = value.start_mark.line + 1
        if isinstance(value, yaml.SequenceNode):  # "scorers[1]" -> the line of that entry
            lines.update({f"{key.value}[{i}]": v.start_mark.line + 1 for i, v in enumerate(value.value)})
    return data, lines


def _check_config(path: Path, cfg: dict, lines: dict[str, int]) -> None:
    def fail(field: str, message: str, at: str | None = None, cause: Exception | None = None) -> None:
        line = lines.get(at or field, lines.get(field, 1))
        raise SuiteError(f"{path}:{line}: field '{field}': {message}") from cause

    for field in REQUIRED:
        if field not in cfg:
            fail(field, "missing.")
    if cfg["task"] not in TASKS:
        fail("task", unknown_name_message("task", str(cfg["task"]), list(TASKS)))
    if cfg.get("grounding", "none") not in GROUNDINGS:
        fail("grounding", unknown_name_message("grounding", str(cfg["grounding"]), list(GROUNDINGS)))
    if cfg["task"] == "classification" and not _str_list(cfg.get("labels")):
        fail("labels", "a classification suite needs a non-empty list of labels.")
    for field, check in (("scorers", get_scorer), ("metrics", get_metric)):
        if not _str_list(cfg[field]):
            fail(field, "must be a non-empty list of names.")
        for i, name in enumerate(cfg[field]):
            try:
                check(name)
            except UnknownNameError as exc:
                fail(field, exc.message, at=f"{field}[{i}]", cause=exc)
    _check_template(cfg["prompt_template"], fail)
    mnt = cfg.get("max_new_tokens", 128)
    if isinstance(mnt, bool) or not isinstance(mnt, int) or mnt < 1:
        fail("max_new_tokens", f"must be a positive integer, not {mnt!r}.")


def _check_template(template: object, fail) -> None:
    if not isinstance(template, str) or not template.strip():
        fail("prompt_template", "must be a non-empty string.")
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
    except ValueError as exc:
        fail("prompt_template", f"{exc} (write literal braces as {{{{ and }}}}).")
    for name in fields:
        if name not in PLACEHOLDERS:
            fail("prompt_template", f"unknown placeholder {{{name}}}; use "
                 + ", ".join("{" + p + "}" for p in PLACEHOLDERS) + ".")


def _str_list(value: object) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, str) and v for v in value)


def _faq(path: Path) -> tuple[str, bytes]:
    """The FAQ as prompt text, and its bytes for the suite hash."""
    raw = _read(path)
    data, _ = _parse_yaml(path, raw)
    entries = data.get("entries")
    if not isinstance(entries, list) or not entries:
        raise SuiteError(f"{path}: field 'entries': a faq grounding needs a list of entries.")
    store = data.get("store", "the store")
    lines = [f"Store FAQ ({store}):"]
    for n, entry in enumerate(entries, 1):
        if not isinstance(entry, dict) or not entry.get("question") or not entry.get("answer"):
            raise SuiteError(f"{path}: entries[{n}]: needs a question and an answer.")
        lines.append(f"Q: {entry['question']}\nA: {entry['answer']}")
    return "\n\n".join(lines), raw


# ---- items.jsonl -----------------------------------------------------------------------
def _parse_items(path: Path, raw: bytes, labels: tuple[str, ...], grounding: str,
                 policies: Path | None, verdict: bool) -> tuple[EvalItem, ...]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SuiteError(f"{path}: not UTF-8 ({exc.reason}).") from exc
    regions = set(load_policies(policies)) if grounding == "policy" else set(REGIONS)
    items: list[EvalItem] = []
    first_line: dict[str, int] = {}
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        item = _parse_item(f"{path}:{lineno}", line, lineno, labels, grounding, regions, verdict)
        if item.id in first_line:
            raise SuiteError(f"{path}:{lineno}: field 'id': duplicate id '{item.id}' "
                             f"(first on line {first_line[item.id]}).")
        first_line[item.id] = lineno
        items.append(item)
    if not items:
        raise SuiteError(f"{path}: no items.")
    return tuple(items)


def _parse_item(where: str, line: str, lineno: int, labels: tuple[str, ...], grounding: str,
                regions: set[str], verdict: bool) -> EvalItem:
    def fail(field: str, message: str) -> None:
        raise SuiteError(f"{where}: field '{field}': {message}")

    try:
        obj = json.loads(line)
    except json.JSONDecodeError as exc:
        raise SuiteError(f"{where}: invalid JSON: {exc.msg} (column {exc.colno}).") from exc
    if not isinstance(obj, dict):
        raise SuiteError(f"{where}: each line must be a JSON object.")
    for field in ITEM_REQUIRED:
        if field not in obj:
            fail(field, "missing.")
    for field in ("id", "text"):
        if not isinstance(obj[field], str) or not obj[field].strip():
            fail(field, "must be a non-empty string.")
    if obj["lang"] not in LANGUAGES:
        fail("lang", unknown_name_message("language", str(obj["lang"]), list(LANGUAGES)))
    region = obj.get("region")
    if region is not None and region not in regions:
        fail("region", unknown_name_message("region", str(region), sorted(regions)))
    if grounding == "policy" and region is None:
        fail("region", "missing; a policy-grounded suite needs each item's region.")
    expected = _parse_expected(obj["expected"], labels, fail)
    if verdict and expected.eligible is None:
        fail("expected.eligible", "missing; the verdict scorer needs it.")
    group = obj.get("group")
    if group is not None and (not isinstance(group, str) or not group.strip()):
        fail("group", "must be a non-empty string (the id shared by an item's phrasings).")
    return EvalItem(id=obj["id"], lang=obj["lang"], text=obj["text"], region=region,
                    expected=expected, line=lineno, group=group)


def _parse_expected(exp: object, labels: tuple[str, ...], fail) -> Expected:
    if not isinstance(exp, dict):
        fail("expected", "must be an object.")
    intent = exp.get("intent")
    if labels and intent is None:
        fail("expected.intent", "missing; a classification item needs its intent.")
    if intent is not None and intent not in labels:
        fail("expected.intent", unknown_name_message("label", str(intent), list(labels)))
    facts = exp.get("facts", [])
    if not isinstance(facts, list) or not all(isinstance(f, str) and f.strip() for f in facts):
        fail("expected.facts", "must be a list of non-empty strings.")
    eligible, days, payer = exp.get("eligible"), exp.get("days"), exp.get("payer")
    if eligible is not None and not isinstance(eligible, bool):
        fail("expected.eligible", f"must be true or false, not {eligible!r}.")
    if days is not None and (isinstance(days, bool) or not isinstance(days, int) or days < 0):
        fail("expected.days", f"must be a whole number of days, not {days!r}.")
    if payer is not None and payer not in PAYERS:
        fail("expected.payer", unknown_name_message("payer", str(payer), list(PAYERS)))
    return Expected(intent=intent, facts=tuple(facts), eligible=eligible, days=days, payer=payer)
