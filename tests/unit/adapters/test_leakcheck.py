"""Near-duplicate leak check between training dialogs and eval items."""
from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from workbench.adapters import leakcheck
from workbench.adapters.leakcheck import (Text, check_files, check_leaks, customer_text,
                                          ngrams, template_pattern, training_texts)
from workbench.eval.suite import list_suites, load_splits

TEMPLATE = 'Customer message (in {lang_name}):\n"""{text}"""\n\nReply in {lang_name}.'


@pytest.fixture(scope="module")
def suites() -> list:
    names = list_suites()
    if not names:
        pytest.skip("no eval suites")
    return [s for n in names for s in load_splits(n)]  # dev and test


def _dialogs(path: Path, questions: list[str]) -> Path:
    rows = [{"messages": [{"role": "system", "content": "S"},
                          {"role": "user", "content": TEMPLATE.format(lang_name="English", text=q)},
                          {"role": "assistant", "content": "A"}]} for q in questions]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def test_ngrams_ignore_case_punctuation_and_spacing() -> None:
    assert ngrams("Where is MY order?!") == ngrams("where is my   order")
    assert ngrams("我的包裹在哪里") == {"我的包裹", "的包裹在", "包裹在哪", "裹在哪里"}
    assert ngrams("ab") == {"ab"} and ngrams("?!") == set()


def test_customer_text_comes_out_of_the_template() -> None:
    filled = TEMPLATE.format(lang_name="Thai", text="คืนสินค้าได้ไหม")
    assert customer_text(filled, [template_pattern(TEMPLATE)]) == "คืนสินค้าได้ไหม"
    assert customer_text('Other wording """inner question""" end', []) == "inner question"
    assert customer_text("plain message", []) == "plain message"


def test_paraphrases_are_caught_and_other_questions_are_not(tmp_path: Path, suites) -> None:
    item = Text("s:1", "Can I still change the delivery address of my order from yesterday?")
    variants = ["Hi team! Can I still change the delivery address of my order from yesterday? Thanks",
                "can i still change the delivery adress of my order from yesterday",
                "Can I still change the shipping address of my order from yesterday?",
                "Could I still change the delivery address of my order from yesterday?"]
    train = training_texts([_dialogs(tmp_path / "d.jsonl", variants)], suites)
    for k, text in enumerate(train):
        (pair,) = check_leaks([text], [item]).closest
        assert pair.leak and pair.train_source == f"d.jsonl:{k + 1}", pair
    other = [Text("x:1", "Do you ship to Norway, and how long does it take?"),
             Text("x:2", "Can I change my password?")]
    assert check_leaks(other, [item]).leaks == []


def test_one_edit_paraphrases_of_every_eval_item_are_caught(suites) -> None:
    """Calibration of the thresholds: one word replaced (two characters in unspaced
    scripts), or the text wrapped in a greeting and upper-cased, still counts as the same."""
    rng = random.Random(0)
    evals = leakcheck.eval_texts(suites)
    swapped, wrapped = [], []
    for e in evals:
        words = e.text.split()
        if len(words) > 3:
            k = rng.randrange(len(words))
            swapped.append(Text(e.source, " ".join(words[:k] + ["zzz"] + words[k + 1:])))
        else:
            k = rng.randrange(max(len(e.text) - 2, 1))
            swapped.append(Text(e.source, e.text[:k] + "某某" + e.text[k + 2:]))
        wrapped.append(Text(e.source, "Hello, " + e.text.upper() + " Thanks!"))
    for edited, least in ((swapped, 0.9), (wrapped, 0.99)):
        caught = {p.eval_source for p in check_leaks(edited, evals).leaks}
        assert len(caught) / len(evals) >= least


def test_shipped_training_data_has_no_near_duplicates_of_eval_items(suites) -> None:
    if not sorted(leakcheck.DEFAULT_DATA.glob("*.jsonl")):
        pytest.skip("data/train/*.jsonl not generated yet")
    report = check_files()
    assert report.n_train >= 1000 and report.n_eval == sum(len(s.items) for s in suites)
    assert report.closest, "the report lists the closest pairs"
    assert report.leaks == [], leakcheck.format_report(report, top=len(report.leaks))


def test_cli_exit_code_and_json(tmp_path: Path, capsys, suites) -> None:
    item = suites[0].items[0].text
    leaky = _dialogs(tmp_path / "leaky.jsonl", ["Hello! " + item])
    assert leakcheck.main(["--data", str(leaky), "--suite", suites[0].base_name, "--json"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["leaks"] == 1 and out["closest"][0]["train_source"] == "leaky.jsonl:1"
    clean = _dialogs(tmp_path / "clean.jsonl", ["Zebra llama quokka?"])
    assert leakcheck.main(["--data", str(clean), "--suite", suites[0].base_name]) == 0
