"""The regional-policy test split: hand-written requests whose verdicts come from the policy pack.

``regional-policy/test_cases.yaml`` holds each case's facts (region, item category, state, days
elapsed) and its phrasings; nothing there states the verdict. This module derives it from
``policies.yaml`` (window, unit, payer, excluded categories read through the ``exclusions``
table of ``phrases/policy.yaml``) and writes ``test.jsonl``, one item per phrasing, the
phrasings of a case sharing a ``group`` (for paraphrase consistency)::

    python -m workbench.eval.policy_cases [--check]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml

from workbench.config import eval_sets_root, phrases_dir
from workbench.domain.policy import load_policies, policies_file
from workbench.errors import SuiteError

SUITE = "regional-policy"
CASES_FILE = "test_cases.yaml"
OUT_FILE = "test.jsonl"
STATES = ("new", "opened", "used")
# Regions whose condition (unused; unused with tags; value lost through use; unopened) refuses
# a used item.
USED_REFUSED = frozenset({"SA", "AE", "KR", "JP"})
# "Opened but not used" reads either way against "unused" conditions: no case may rest on it.
OPENED_UNCLEAR = frozenset({"SA", "AE", "KR"})


def suite_folder() -> Path:
    return eval_sets_root() / SUITE


def exclusions() -> dict[str, list[str]]:
    """Policy exclusion words -> the ``category/state`` cases they cover (phrases/policy.yaml)."""
    path = phrases_dir() / "policy.yaml"
    table = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("exclusions")
    if not isinstance(table, dict):
        raise SuiteError(f"{path}: no 'exclusions' table.")
    return {words: list(cases or []) for words, cases in table.items()}


def expected_verdict(case: dict, policies: dict[str, dict], table: dict[str, list[str]]) -> dict:
    """``{"eligible", "days", "facts", "payer"}`` for one case, by the region's policy."""
    where = f"{CASES_FILE}: case {case.get('id')}"
    region, state, elapsed = case.get("region"), case.get("state"), case.get("elapsed")
    if region not in policies:
        raise SuiteError(f"{where}: unknown region {region!r}; known: {', '.join(policies)}.")
    pol = policies[region]
    window = int(pol["return_window_days"])
    if state not in STATES:
        raise SuiteError(f"{where}: state must be one of {', '.join(STATES)}, not {state!r}.")
    if isinstance(elapsed, bool) or not isinstance(elapsed, int) or elapsed < 1 or elapsed == window:
        raise SuiteError(f"{where}: elapsed must be a whole number of days >= 1 and not the "
                         f"window itself ({window}), not {elapsed!r}.")
    excluded = f"{case.get('category')}/{state}" in {
        c for words in pol.get("excluded") or [] for c in table.get(words, [])}
    unclear = state == "opened" and region in OPENED_UNCLEAR or (
        state == "used" and region not in USED_REFUSED)
    if unclear and not excluded:
        raise SuiteError(f"{where}: an item {state} in {region} has no clear verdict under its policy.")
    eligible = elapsed < window and not excluded and state != "used"
    payer = "store" if pol.get("return_shipping_payer") == "store" else "customer"
    return {"eligible": eligible, "days": window, "facts": [str(window)], "payer": payer}


def build_items(cases_path: Path | None = None, policies_path: Path | None = None) -> list[dict]:
    """The test split's items, one per phrasing, in the order of the cases file."""
    cases_path = cases_path or suite_folder() / CASES_FILE
    data = yaml.safe_load(cases_path.read_text(encoding="utf-8")) or {}
    policies, table = load_policies(policies_path or policies_file()), exclusions()
    items = []
    for case in data.get("cases") or []:
        expected = expected_verdict(case, policies, table)
        phrasings = case.get("phrasings") or []
        if len(phrasings) < 2:
            raise SuiteError(f"{cases_path}: case {case.get('id')}: needs at least two phrasings.")
        group = f"pol-t-{case['id']}"
        items += [{"id": f"{group}-{chr(97 + k)}", "lang": p["lang"], "text": p["text"],
                   "region": case["region"], "group": group, "expected": expected}
                  for k, p in enumerate(phrasings)]
    return items


def render(items: list[dict]) -> str:
    return "".join(json.dumps(i, ensure_ascii=False) + "\n" for i in items)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Write the regional-policy test split from its cases.")
    ap.add_argument("--check", action="store_true", help="Only check test.jsonl is up to date.")
    args = ap.parse_args(argv)
    out = suite_folder() / OUT_FILE
    text = render(build_items())
    if args.check:
        current = out.read_text(encoding="utf-8") if out.is_file() else ""
        print(f"{out}: " + ("up to date" if current == text else "stale; rerun without --check"))
        return 0 if current == text else 1
    out.write_text(text, encoding="utf-8")
    print(f"{out}: {text.count(chr(10))} items")
    return 0


if __name__ == "__main__":
    sys.exit(main())
