"""Generate the multilingual support training dialogs in ``workbench/data/train/``.

    python -m workbench.adapters.traindata [--out workbench/data/train] [--seed 0]

Three files, one per eval task, each line ``{"messages": [...], "lang", "task", ...}``:

- ``intents.jsonl``: a customer message -> exactly one intent label;
- ``policy.jsonl``: a change-of-mind return request from one of the 12 regions -> a short
  answer in the customer's language (eligible or not, the region's window, who pays return
  shipping) ending with the JSON verdict line;
- ``support.jsonl``: an FAQ question -> a short answer stating the FAQ's facts.

Customer messages and answers are put together from the phrase files in ``workbench/data/phrases/``
(one per task, plus ``regions.yaml``). System prompts, grounding and user templates come from
each eval suite (``Suite.messages``), so the adapter learns exactly the format the eval sends.
Verdicts are computed from the policy pack (``workbench/data/policy/policies.yaml``), and so are the items
each region excludes (the words of its ``excluded`` list, read through the ``exclusions``
table of ``phrases/policy.yaml``). Messages are
phrased apart from the eval items, and the script refuses to write data that contains any
eval item's text or overlaps a suite's test split (whole strings or question shapes, see
``leakcheck``).
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
from functools import lru_cache
from pathlib import Path

import yaml

from workbench.config import phrases_dir, train_dir
from workbench.domain.langs import LANGUAGES, REGIONS
from workbench.domain.policy import load_policies, policies_file
from workbench.errors import InputError, WorkbenchError
from workbench.eval.schema import EvalItem, Expected
from workbench.eval.suite import Suite, load_suite

DEFAULT_OUT = train_dir()
PHRASES_DIR = phrases_dir()
SUITES = {"intents": "multilingual-intents", "policy": "regional-policy", "support": "multilingual-support"}
NO_SPACE = {"zh", "ja"}  # scripts that join sentences without spaces

STATES = ("new", "opened", "used")  # keys of a request's ``state`` phrases
# Regions whose condition ("unused", "unused with tags", value lost through use) refuses used items.
USED_REFUSED = {"SA", "AE", "KR", "JP"}
# Items that are fine in a region when new and within the window: the cases sampled as
# eligible, less any the region's policy excludes (see ``_pick_case``).
ACCEPTED: dict[str, list[tuple[str, str]]] = {
    region: [("regular", "new"), ("regular", "new")]
    + ([] if region == "SA" else [("electronics", "new")])
    + ([("custom", "new")] if region == "BR" else [])
    + ([("cosmetics", "new")] if region in ("EU", "GB") else [])
    + ([("regular", "opened")] if region not in USED_REFUSED else [])
    for region in REGIONS
}


# ---- phrase files ---------------------------------------------------------------------------
@lru_cache(maxsize=None)
def phrases(name: str) -> dict[str, dict]:
    """``workbench/data/phrases/<name>.yaml``: language (or region, for ``regions``) -> its entries."""
    path = PHRASES_DIR / f"{name}.yaml"
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise InputError(f"{path}: cannot read the phrase file ({exc}).") from exc
    expected = REGIONS if name == "regions" else LANGUAGES
    missing = [key for key in expected if not isinstance((data or {}).get(key), dict)]
    if missing:
        raise InputError(f"{path}: no entries for {', '.join(missing)}.")
    return data


def _greeting(lang: str, rng: random.Random) -> str:
    """One of the language's greetings or none, each as likely."""
    return rng.choice([""] + list(phrases("intents")[lang]["greetings"]))


# ---- intents -------------------------------------------------------------------------------
def intent_rows(suite: Suite, rng: random.Random, copies: int = 1) -> list[dict]:
    rows = []
    for lang, entry in phrases("intents").items():
        for intent, texts in entry["intents"].items():
            for phrase in texts:
                for _ in range(copies):
                    greeting = _greeting(lang, rng)
                    text = _join(lang, [greeting, phrase.format(
                        order=f"#{rng.randint(1000000, 9999999)}", product=rng.choice(entry["products"]))])
                    rows.append(_row(suite, lang, text, None, intent, task="intents", intent=intent))
    return rows


# ---- regional policy ----------------------------------------------------------------------
def policy_rows(suite: Suite, rng: random.Random, per_region: int = 40) -> list[dict]:
    path = suite.policies_path or policies_file()
    policies = load_policies(path)
    rows = []
    for region in REGIONS:
        excluded = excluded_cases(region, policies, path)
        for _ in range(per_region):
            lang = (rng.choice(phrases("regions")[region]["languages"]) if rng.random() < 0.55
                    else rng.choice(list(LANGUAGES)))
            rows.append(_policy_row(suite, policies[region], region, excluded, lang, rng))
    return rows


def excluded_cases(region: str, policies: dict[str, dict], path: Path) -> list[tuple[str, str]]:
    """The (category, state) cases ``region``'s policy excludes for a change of mind, in the
    order of its ``excluded`` list, each exclusion read through ``phrases/policy.yaml``."""
    table = phrases("policy").get("exclusions")
    where = PHRASES_DIR / "policy.yaml"
    if not isinstance(table, dict):
        raise InputError(f"{where}: no 'exclusions' table (policy exclusion -> item cases).")
    if region not in policies:
        raise InputError(f"{path}: no policy for region {region}.")
    cases: list[tuple[str, str]] = []
    for words in policies[region].get("excluded") or []:
        if words not in table:
            raise InputError(f"{path}: region {region} excludes {words!r}, which the 'exclusions' "
                             f"table of {where} does not know; add the item cases it means there.")
        cases += [_item_case(where, words, case) for case in table[words] or []]
    return cases


def _item_case(where: Path, words: str, case: object) -> tuple[str, str]:
    category, _, state = str(case).partition("/")
    if category not in phrases("policy")["en"]["items"] or state not in STATES:
        raise InputError(f"{where}: exclusions: {words!r}: {case!r} is not an item case "
                         f"'category/state' (a category of items; state {', '.join(STATES)}).")
    return category, state


def _pick_case(region: str, excluded: list[tuple[str, str]],
               rng: random.Random) -> tuple[str, str, str]:
    """(category, state, outcome): outcome is ok, no_window, no_excluded or no_condition."""
    roll = rng.random()
    if roll < 0.22 and excluded:
        return (*rng.choice(excluded), "no_excluded")
    if roll < 0.32 and region in USED_REFUSED:
        state = rng.choice(["used", "opened"]) if region == "JP" else "used"
        return "regular", state, "no_excluded" if region == "JP" else "no_condition"
    # An exclusion the store adds to the policy pack must not be sampled as eligible.
    accepted = [c for c in ACCEPTED[region] if c not in excluded]
    if roll < 0.58:
        category, _ = rng.choice([c for c in accepted if c[1] == "new"])
        return category, "new", "no_window"
    return (*rng.choice(accepted), "ok")


def _elapsed(window: int, business: bool, late: bool, rng: random.Random) -> tuple[int, str]:
    """Days since arrival and how the customer says it (a key of the language's ``when``)."""
    if late:
        n = rng.randint(window + 2, window + 25) if not business else rng.randint(10, 35)
    else:
        n = rng.randint(1, window - 1)
    if n == 1:
        return n, "yesterday"
    if business and not late:
        return n, "business_days"
    if n % 7 == 0 and rng.random() < 0.6:
        return n, "weeks"
    return n, "days"


def _policy_row(suite: Suite, pol: dict, region: str, excluded: list[tuple[str, str]], lang: str,
                rng: random.Random) -> dict:
    entry = phrases("policy")[lang]
    ask, say = entry["request"], entry["answer"]
    category, state, outcome = _pick_case(region, excluded, rng)
    window, business = int(pol["return_window_days"]), pol.get("window_unit") == "business_days"
    n, how = _elapsed(window, business, outcome == "no_window", rng)
    when = ask["when"][how].format(n=n // 7 if how == "weeks" else n)
    item = rng.choice(entry["items"][category])
    cities = phrases("regions")[region]["cities"]
    parts = [rng.choice(ask["opener"]).format(city=rng.choice(cities))] if rng.random() < 0.75 else []
    parts.append(rng.choice(ask["received"]).format(item=item, when=when))
    parts.append(rng.choice(ask["state"][state]))
    if rng.random() < 0.7:
        parts.append(rng.choice(ask["change_of_mind"]))
    parts.append(rng.choice(ask["question"]))
    text = _join(lang, parts)
    eligible = outcome == "ok"
    payer = "store" if pol.get("return_shipping_payer") == "store" else "customer"
    answer = _join(lang, [
        say["eligible"] if eligible else say["refused"][outcome],
        say["window"].format(days=window, unit=say["unit"]["business_days" if business else "days"],
                             start=say["start"][pol.get("window_from", "delivery")]),
        say["payer"][payer],
    ]) + "\n" + json.dumps({"eligible": eligible, "days": window, "payer": payer})
    return _row(suite, lang, text, region, answer, task="policy", region=region,
                eligible=eligible, days=window, case=f"{category}/{state}/{outcome}")


def _join(lang: str, parts: list[str]) -> str:
    return ("" if lang in NO_SPACE else " ").join(s.strip() for s in parts if s.strip())


# ---- support ---------------------------------------------------------------------------------
def support_rows(suite: Suite, rng: random.Random, per_lang: int = 6) -> list[dict]:
    rows = []
    for lang, entries in phrases("support").items():
        for faq_id in rng.sample(list(entries), min(per_lang, len(entries))):
            entry = entries[faq_id]
            rows.append(_row(suite, lang, rng.choice(entry["questions"]), None, entry["answer"],
                             task="support", faq=faq_id))
    return rows


# ---- common -----------------------------------------------------------------------------------
def _row(suite: Suite, lang: str, text: str, where: str | None, answer: str, **meta) -> dict:
    item = EvalItem(id="train", lang=lang, text=text, region=where, expected=Expected())
    messages = suite.messages(item) + [{"role": "assistant", "content": answer}]
    return {"messages": messages, "lang": lang, **meta}


def build(seed: int = 0, intent_copies: int = 2, policy_per_region: int = 40,
          support_per_lang: int = 6) -> dict[str, list[dict]]:
    """task -> shuffled rows; deterministic for a seed."""
    rng = random.Random(seed)
    suites = {task: load_suite(name) for task, name in SUITES.items()}
    data = {"intents": intent_rows(suites["intents"], rng, intent_copies),
            "policy": policy_rows(suites["policy"], rng, policy_per_region),
            "support": support_rows(suites["support"], rng, support_per_lang)}
    for rows in data.values():
        rng.shuffle(rows)
    return data


def eval_texts() -> list[str]:
    """Every eval item's customer text, from every split of all suites under workbench/data/eval_sets/."""
    from workbench.eval.suite import list_suites, load_splits

    return [item.text for name in list_suites() for s in load_splits(name) for item in s.items]


def eval_leaks(rows: list[dict], texts: list[str] | None = None) -> list[str]:
    """Eval item texts that appear anywhere in the training dialogs (should be none)."""
    blob = "\n".join(m["content"] for r in rows for m in r["messages"])
    return [t for t in (texts if texts is not None else eval_texts()) if t.strip() and t in blob]


def test_overlap(data: dict[str, list[dict]]) -> str:
    """The leak check's report when the data near-duplicates a test item or reuses its
    shape (``leakcheck.check_test_split``), "" when it passes."""
    from workbench.adapters.leakcheck import overlap_with_test_split

    with tempfile.TemporaryDirectory() as tmp:
        return overlap_with_test_split(write(data, Path(tmp)))


def write(data: dict[str, list[dict]], out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for task, rows in data.items():
        path = out / f"{task}.jsonl"
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
        paths.append(path)
    return paths


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--intent-copies", type=int, default=2)
    ap.add_argument("--policy-per-region", type=int, default=40)
    ap.add_argument("--support-per-lang", type=int, default=6)
    args = ap.parse_args(argv)
    try:
        data = build(args.seed, args.intent_copies, args.policy_per_region, args.support_per_lang)
    except WorkbenchError as exc:
        print(exc.message, file=sys.stderr)
        return 1
    leaks = eval_leaks([r for rows in data.values() for r in rows])
    if leaks:
        print(f"Refusing to write: {len(leaks)} eval texts appear in the training data, e.g. "
              f"{leaks[0]!r}", file=sys.stderr)
        return 1
    overlap = test_overlap(data)
    if overlap:
        print(f"Refusing to write: the data overlaps the test splits.\n{overlap}", file=sys.stderr)
        return 1
    for path in write(data, args.out):
        print(f"{path}: {sum(1 for _ in path.open(encoding='utf-8'))} dialogs, "
              f"{path.stat().st_size / 1e6:.2f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
