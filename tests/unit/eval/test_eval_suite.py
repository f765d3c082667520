"""Loading and validating eval suites: every error names file:line and the field."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from workbench.config import eval_sets_root
from workbench.errors import SuiteError, UnknownNameError
from workbench.eval.suite import list_suites, load_suite

SUITE = {
    "name": "tmp-intents", "description": "test", "task": "classification", "grounding": "none",
    "labels": ["order_tracking", "cancel_order"],
    "system_prompt": "Route messages.",
    "prompt_template": "Classify ({lang_name}) into {labels}:\n{text}",
    "scorers": ["intent_label"], "metrics": ["accuracy", "macro_f1"], "max_new_tokens": 4,
}
ITEMS = [
    {"id": "a", "lang": "en", "text": "Where is my parcel?", "expected": {"intent": "order_tracking"}},
    {"id": "b", "lang": "fr", "text": "Annulez ma commande", "expected": {"intent": "cancel_order"}},
    {"id": "c", "lang": "en", "text": "Cancel it please", "expected": {"intent": "cancel_order"}},
]


def write_suite(root: Path, suite: dict | None = None, items: list | None = None,
                raw_items: str | None = None) -> Path:
    folder = root / "suite"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "suite.yaml").write_text(yaml.safe_dump(suite or SUITE, sort_keys=False), encoding="utf-8")
    text = raw_items if raw_items is not None else \
        "\n".join(json.dumps(i, ensure_ascii=False) for i in (items or ITEMS)) + "\n"
    (folder / "items.jsonl").write_text(text, encoding="utf-8")
    return folder


def test_loads_by_path_and_builds_messages(tmp_path: Path) -> None:
    suite = load_suite(write_suite(tmp_path))
    assert suite.name == "tmp-intents" and len(suite.items) == 3
    msgs = suite.messages(suite.items[1])
    assert msgs[0] == {"role": "system", "content": "Route messages."}
    assert msgs[1]["content"] == "Classify (French) into order_tracking, cancel_order:\nAnnulez ma commande"
    assert load_suite(tmp_path / "suite" / "suite.yaml").hash == suite.hash


def test_hash_follows_the_items(tmp_path: Path) -> None:
    before = load_suite(write_suite(tmp_path)).hash
    after = load_suite(write_suite(tmp_path, items=ITEMS[:2])).hash
    assert before != after


def test_bad_json_reports_file_and_line(tmp_path: Path) -> None:
    lines = [json.dumps(ITEMS[0]), json.dumps(ITEMS[1]), '{"id": "c", "lang": "en",']
    folder = write_suite(tmp_path, raw_items="\n".join(lines))
    with pytest.raises(SuiteError, match=r"items\.jsonl:3: invalid JSON"):
        load_suite(folder)


def test_missing_field_reports_file_line_and_field(tmp_path: Path) -> None:
    items = [ITEMS[0], {"id": "b", "text": "no language", "expected": {"intent": "cancel_order"}}]
    with pytest.raises(SuiteError, match=r"items\.jsonl:2: field 'lang': missing"):
        load_suite(write_suite(tmp_path, items=items))


def test_blank_lines_keep_line_numbers(tmp_path: Path) -> None:
    raw = json.dumps(ITEMS[0]) + "\n\n" + json.dumps({**ITEMS[1], "lang": "fre"}) + "\n"
    with pytest.raises(SuiteError, match=r"items\.jsonl:3: field 'lang': Unknown language 'fre'. "
                                         r"Did you mean 'fr'\?"):
        load_suite(write_suite(tmp_path, raw_items=raw))


@pytest.mark.parametrize("change, pattern", [
    ({"region": "XX"}, r"field 'region': Unknown region 'XX'"),
    ({"expected": {"intent": "order_trackin"}}, r"field 'expected.intent': .*Did you mean 'order_tracking'"),
    ({"id": "a"}, r"field 'id': duplicate id 'a' \(first on line 1\)"),
    ({"text": ""}, r"field 'text': must be a non-empty string"),
])
def test_item_errors(tmp_path: Path, change: dict, pattern: str) -> None:
    items = [ITEMS[0], {**ITEMS[1], **change}]
    with pytest.raises(SuiteError, match=r"items\.jsonl:2: " + pattern):
        load_suite(write_suite(tmp_path, items=items))


def test_unknown_scorer_in_suite_yaml(tmp_path: Path) -> None:
    folder = write_suite(tmp_path, {**SUITE, "scorers": ["intent_label", "factz"]})
    line = (folder / "suite.yaml").read_text().splitlines().index("- factz") + 1
    with pytest.raises(SuiteError) as err:
        load_suite(folder)
    assert f"suite.yaml:{line}: field 'scorers': Unknown scorer 'factz'. Did you mean 'facts'?" \
        in err.value.message
    assert isinstance(err.value.__cause__, UnknownNameError)


def test_unknown_metric_and_placeholder(tmp_path: Path) -> None:
    with pytest.raises(SuiteError, match=r"field 'metrics': Unknown metric 'acuracy'. Did you mean 'accuracy'"):
        load_suite(write_suite(tmp_path, {**SUITE, "metrics": ["acuracy"]}))
    with pytest.raises(SuiteError, match=r"field 'prompt_template': unknown placeholder \{lang\}"):
        load_suite(write_suite(tmp_path, {**SUITE, "prompt_template": "{lang}: {text}"}))


def test_missing_suite_field(tmp_path: Path) -> None:
    cfg = {k: v for k, v in SUITE.items() if k != "task"}
    with pytest.raises(SuiteError, match=r"suite\.yaml:1: field 'task': missing"):
        load_suite(write_suite(tmp_path, cfg))


def test_unknown_suite_name() -> None:
    with pytest.raises(UnknownNameError, match="Unknown suite 'no-such-suite'"):
        load_suite("no-such-suite")


def test_faq_and_policy_grounding(tmp_path: Path) -> None:
    folder = write_suite(tmp_path, {**SUITE, "task": "verdict", "grounding": "policy", "labels": [],
                                    "scorers": ["verdict", "facts"], "metrics": ["accuracy"]},
                         items=[{"id": "p", "lang": "de", "text": "Rückgabe?", "region": "EU",
                                 "expected": {"eligible": True, "days": 14, "facts": ["14"]}}])
    (folder / "policies.yaml").write_text(yaml.safe_dump({"regions": {"EU": {
        "name": "European Union", "return_window_days": 14, "return_shipping_payer": "customer"}}}))
    suite = load_suite(folder)
    assert "within 14 days" in suite.messages(suite.items[0])[0]["content"]
    (folder / "items.jsonl").write_text(json.dumps({"id": "p", "lang": "de", "text": "x", "region": "US",
                                                    "expected": {"eligible": True}}) + "\n")
    with pytest.raises(SuiteError, match=r"items\.jsonl:1: field 'region': Unknown region 'US'"):
        load_suite(folder)


def test_sample_spreads_over_languages(tmp_path: Path) -> None:
    suite = load_suite(write_suite(tmp_path))
    assert [i.id for i in suite.sample(2)] == ["a", "b"]
    assert len(suite.sample(None)) == 3


@pytest.mark.skipif(not (eval_sets_root() / "regional-policy" / "items.jsonl").exists(),
                    reason="suite data not present")
def test_shipped_suites_load() -> None:
    for name in list_suites():
        suite = load_suite(name)
        assert suite.items and all(suite.messages(i) for i in suite.items)


FEWSHOT = {**SUITE, "output_type": "multiple_choice",
           "fewshot": {"file": "fewshot.jsonl", "preamble": "Intents: {labels}", "template": "Msg: {text}"}}


def write_shots(folder: Path, rows: list[dict]) -> None:
    (folder / "fewshot.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")


def test_fewshot_examples_go_before_the_item_for_choice_scoring_only(tmp_path: Path) -> None:
    folder = write_suite(tmp_path, FEWSHOT)
    write_shots(folder, [{"text": "Track it", "label": "order_tracking"},
                         {"text": "Stop my order", "label": "cancel_order"}])
    suite = load_suite(folder)
    item = suite.items[0]
    msgs = suite.choice_messages(item)
    assert [m["role"] for m in msgs] == ["system", "user", "assistant", "user", "assistant", "user"]
    assert msgs[1]["content"] == "Intents: order_tracking, cancel_order\n\nMsg: Track it"
    assert msgs[2]["content"] == "order_tracking" and msgs[-1]["content"] == "Msg: Where is my parcel?"
    assert suite.messages(item)[-1]["content"].startswith("Classify (English)")  # generation: zero-shot
    before = suite.hash
    write_shots(folder, [{"text": "Track it please", "label": "order_tracking"}])
    assert load_suite(folder).hash != before  # the examples are part of the suite's content


def test_fewshot_examples_in_the_items_language_come_first(tmp_path: Path) -> None:
    folder = write_suite(tmp_path, FEWSHOT)
    write_shots(folder, [{"text": "Track it", "label": "order_tracking", "lang": "en"},
                         {"text": "Annulez-la", "label": "cancel_order", "lang": "fr"},
                         {"text": "Où est-il ?", "label": "order_tracking", "lang": "fr"},
                         {"text": "Stop it", "label": "cancel_order"}])
    suite = load_suite(folder)
    shown = {i.lang: [m["content"] for m in suite.choice_messages(i) if m["role"] == "assistant"]
             for i in suite.items}
    assert shown == {"en": ["order_tracking"], "fr": ["cancel_order", "order_tracking"]}
    user = [m["content"] for m in suite.choice_messages(suite.items[1]) if m["role"] == "user"]
    assert user == ["Intents: order_tracking, cancel_order\n\nMsg: Annulez-la", "Msg: Où est-il ?",
                    "Msg: Annulez ma commande"]
    # A language without examples of its own gets the ones without a language.
    assert suite.options.fewshot.for_lang("de") == [("Stop it", "cancel_order", "")]


def test_fewshot_errors_name_the_field(tmp_path: Path) -> None:
    folder = write_suite(tmp_path, FEWSHOT)
    write_shots(folder, [{"text": "Track it", "label": "tracking"}])
    with pytest.raises(SuiteError, match="fewshot.*'tracking' is not one of the suite's labels"):
        load_suite(folder)
    folder = write_suite(tmp_path, {**SUITE, "fewshot": {"file": "fewshot.jsonl"}})
    with pytest.raises(SuiteError, match="only a multiple_choice suite"):
        load_suite(folder)
