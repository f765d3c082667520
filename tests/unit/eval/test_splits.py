"""Dev and test splits: the loader, the shipped test splits, the gap, paraphrase consistency."""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
import yaml

from workbench.domain.langs import REGIONS
from workbench.domain.policy import load_policies
from workbench.errors import SuiteError, UnknownNameError
from workbench.eval import policy_cases
from workbench.eval.metrics import paraphrase_consistency, summarize
from workbench.eval.splits import split_summary, split_table
from workbench.eval.suite import (
    list_suites,
    load_splits,
    load_suite,
    split_names,
    split_of,
)

SUITE = {"name": "mini", "task": "classification", "labels": ["a", "b"], "prompt_template": "{text}",
         "scorers": ["intent_label"], "metrics": ["accuracy"]}


def _suite(tmp_path: Path, splits: object = None, test_items: int = 2) -> Path:
    folder = tmp_path / "mini"
    folder.mkdir()
    cfg = SUITE | ({"splits": splits} if splits is not None else {})
    (folder / "suite.yaml").write_text(yaml.safe_dump(cfg), encoding="utf-8")
    row = {"id": "x", "lang": "en", "text": "hello", "expected": {"intent": "a"}}
    (folder / "items.jsonl").write_text(json.dumps(row) + "\n", encoding="utf-8")
    (folder / "test.jsonl").write_text("".join(
        json.dumps(row | {"id": f"t{k}", "group": "g1"}) + "\n" for k in range(test_items)), encoding="utf-8")
    return folder


def test_a_suite_loads_each_split_under_its_own_name(tmp_path: Path) -> None:
    folder = _suite(tmp_path, {"dev": "items.jsonl", "test": "test.jsonl"})
    dev, test = load_splits(folder)
    assert (dev.name, dev.split, len(dev.items)) == ("mini:dev", "dev", 1)
    assert (test.name, test.split, len(test.items), test.base_name) == ("mini:test", "test", 2, "mini")
    assert test.items[0].group == "g1" and dev.items[0].group is None
    assert load_suite(folder).name == "mini:dev"  # no split asked: the first one
    assert [s.name for s in load_splits(folder, "test")] == ["mini:test"]
    assert split_names(folder) == ("dev", "test") and dev.hash != test.hash
    assert split_of("mini:test:constrained") == "test" and split_of("mini:constrained") is None
    with pytest.raises(UnknownNameError, match="Unknown split of suite mini 'tset'"):
        load_suite(folder, "tset")


def test_a_suite_without_splits_is_one_plain_set(tmp_path: Path) -> None:
    folder = _suite(tmp_path)
    (only,) = load_splits(folder)
    assert (only.name, only.split, len(only.items)) == ("mini", "", 1)
    with pytest.raises(UnknownNameError):
        load_splits(folder, "test")


def test_bad_splits_are_refused_with_the_line(tmp_path: Path) -> None:
    with pytest.raises(SuiteError, match=r"suite\.yaml:\d+: field 'splits': must map"):
        load_suite(_suite(tmp_path, ["dev", "test"]))


def test_shipped_suites_have_dev_and_test_splits() -> None:
    sizes = {name: {s.split: s for s in load_splits(name)} for name in list_suites()}
    for splits in sizes.values():  # apart from each other: see test_leak_shape.py
        assert set(splits) == {"dev", "test"}
    policy = sizes["regional-policy"]["test"]
    assert len(policy.items) >= 120 and len(sizes["multilingual-intents"]["test"].items) >= 180
    assert {i.region for i in policy.items} == set(REGIONS)
    assert min(Counter(i.group for i in policy.items).values()) >= 2  # every case, two phrasings
    intents = sizes["multilingual-intents"]["test"]
    assert Counter((i.lang, i.expected.intent) for i in intents.items).most_common(1)[0][1] == 1


def test_policy_test_split_follows_the_policy_pack() -> None:
    """test.jsonl is what the case file and policies.yaml give, and its verdicts move with
    the policy: a longer window makes a late request eligible."""
    shipped = (policy_cases.suite_folder() / policy_cases.OUT_FILE).read_text(encoding="utf-8")
    assert shipped == policy_cases.render(policy_cases.build_items())
    policies, table = load_policies(), policy_cases.exclusions()
    late = {"id": "t", "region": "GB", "category": "regular", "state": "new", "elapsed": 16}
    assert policy_cases.expected_verdict(late, policies, table) == {
        "eligible": False, "days": 14, "facts": ["14"], "payer": "customer"}
    longer = {**policies, "GB": {**policies["GB"], "return_window_days": 30}}
    assert policy_cases.expected_verdict(late, longer, table)["eligible"] is True
    assert policy_cases.expected_verdict({**late, "region": "IN", "elapsed": 3}, policies,
                                         table)["payer"] == "store"
    custom = {**late, "region": "BR", "category": "custom", "elapsed": 3}
    assert policy_cases.expected_verdict(custom, policies, table)["eligible"] is True
    assert policy_cases.expected_verdict({**custom, "region": "EU"}, policies, table)["eligible"] is False
    with pytest.raises(SuiteError, match="no clear verdict"):
        policy_cases.expected_verdict({**late, "region": "EU", "state": "used"}, policies, table)


def _frame(predictions: dict[str, list[str | None]]) -> pd.DataFrame:
    rows = [{"suite": "p:test", "variant": "v", "variant_label": "v", "group": group,
             "prediction": p, "correct": 1.0, "resolved": 1, "expected_intent": None,
             "service_ms": 10.0, "service_ttft_ms": 1.0, "tokens_per_s": 5.0}
            for group, ps in predictions.items()
            for p in ps]
    return pd.DataFrame(rows)


def _verdict(eligible: bool, days: int = 14, payer: str | None = "customer") -> str:
    return json.dumps({"eligible": eligible, "days": days, "payer": payer})


def test_paraphrase_consistency_counts_groups_with_one_verdict() -> None:
    df = _frame({"same": [_verdict(True), _verdict(True)],
                 "flipped": [_verdict(True), _verdict(False)],
                 "other_days": [_verdict(False, 14), _verdict(False, 30)],
                 "unread": [_verdict(True), None],
                 "no_payer": [_verdict(True, payer=None), _verdict(True, payer=None)],
                 "wrong_but_same": [_verdict(False, 7, "store")] * 3})
    value = paraphrase_consistency(df)
    assert (value.value, value.n) == (pytest.approx(2 / 6), 6) and value.low < value.value < value.high
    alone = _frame({"g": [_verdict(True)]})
    assert paraphrase_consistency(alone).n == 0  # one phrasing says nothing about consistency
    metrics = ("resolution_rate", "paraphrase_consistency")
    assert "paraphrase_consistency" in summarize(df, ["variant_label"], metrics)
    assert "paraphrase_consistency" not in summarize(df.assign(group=None), ["variant_label"], metrics)


def test_split_summary_puts_dev_and_test_side_by_side_with_the_gap() -> None:
    test = _frame({"a": [_verdict(True)] * 2, "b": [_verdict(True), _verdict(False)]})
    test["resolved"] = [1, 0, 0, 0]
    dev = test.assign(suite="p:dev", group=None, resolved=[1, 1, 1, 0])
    summary = split_summary(pd.concat([dev, test], ignore_index=True))
    entry = summary["p"]
    assert entry["dev"]["v"]["resolution_rate"]["value"] == 0.75
    assert entry["test"]["v"]["resolution_rate"]["value"] == 0.25
    assert entry["generalization_gap"]["v"]["resolution_rate"] == pytest.approx(0.5)
    assert entry["test"]["v"]["paraphrase_consistency"]["value"] == 0.5
    table = split_table(pd.concat([dev, test], ignore_index=True))
    row = table[table["metric"] == "Resolution rate"].iloc[0]
    assert row["dev"].startswith("75.0% [") and row["test"].startswith("25.0% [")
    assert row["gap"] == "+50.0 pts"
    assert split_summary(dev.assign(suite="plain")) == {}  # no splits, nothing side by side
