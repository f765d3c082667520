"""Shape-level leak check: a test item's question template reused with other slot values."""
from __future__ import annotations

import json
import random
import re
from pathlib import Path

import pytest

from workbench.adapters.leakcheck import (
    SHAPE,
    Text,
    check_leaks,
    check_test_split,
    eval_texts,
    mask_slots,
    slot_pattern,
)
from workbench.adapters.train import refuse_test_overlap
from workbench.config import train_dir
from workbench.errors import InputError
from workbench.eval.suite import list_suites, load_splits, load_suite

# Slot values a copied template gets instead of its own (each is in a slot list).
CITIES = ["Munich", "Lyon", "Chicago", "Nanjing", "Medina", "Kyoto", "Incheon", "Hobart"]
PRODUCTS = ["a denim jacket", "wireless earbuds", "a face serum", "a box of chocolates"]


def test_masking_hides_numbers_places_products_and_currencies() -> None:
    a = mask_slots("Hi, I live in Munich. I received a denim jacket 12 days ago, it cost 40 EUR.")
    b = mask_slots("hi i live in kyoto, i received wireless earbuds three days ago; it cost 7 usd")
    assert a == b == "hi i live in 0 i received 0 0 days ago it cost 0 0"
    assert mask_slots("我在东京，五天前收到的") == mask_slots("我在东京，三天前收到的")


def _with_new_values(text: str, rng: random.Random) -> str:
    """The same template, other values: each slot (number, place, product...) refilled."""
    return slot_pattern().sub(lambda m: str(rng.randint(2, 40)) if m.group()[0].isdigit()
                              else rng.choice(CITIES + PRODUCTS), text.casefold())


def _dialogs(path: Path, questions: list[str]) -> Path:
    suite = load_suite("regional-policy", "dev")
    rows = []
    for q in questions:
        item = suite.items[0].__class__(id="x", lang="en", text=q, region="EU",
                                        expected=suite.items[0].expected)
        rows.append({"messages": suite.messages(item) + [{"role": "assistant", "content": "A"}]})
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def test_a_copied_test_template_with_new_values_is_caught(tmp_path: Path) -> None:
    """Every regional-policy test item with its slots refilled is a shape leak; the
    whole-string check alone misses some of them."""
    rng = random.Random(0)
    tests = eval_texts([load_suite("regional-policy", "test")])
    copies = [Text(f"copy:{t.source}", _with_new_values(t.text, rng)) for t in tests]
    shape = check_leaks(copies, tests, SHAPE, shape=True)
    assert {p.eval_source for p in shape.leaks} == {t.source for t in tests}
    whole = check_leaks(copies, tests)
    assert len(whole.leaks) < len(tests)  # what the shape check adds


def test_shipped_training_data_passes_and_a_copied_template_fails(tmp_path: Path) -> None:
    text, shape = check_test_split()
    assert text.leaks == [] and shape.leaks == [], (text.closest[:3], shape.closest[:3])
    assert shape.n_eval >= 120 + 180 and shape.n_train > 1000
    refuse_test_overlap(sorted(train_dir().glob("*.jsonl")))  # passes: no exception
    item = load_suite("regional-policy", "test").items[5]
    leaked = _dialogs(tmp_path / "leak.jsonl", ["Where is my parcel?",
                                                _with_new_values(item.text, random.Random(1))])
    _, shape = check_test_split([leaked])
    (pair,) = shape.leaks
    assert pair.eval_source == f"regional-policy:test:{item.id}" and pair.train_source == "leak.jsonl:2"
    with pytest.raises(InputError, match=r"Refusing to train.*test split(.|\n)*shape leak(.|\n)*"
                                         + re.escape(item.id)):
        refuse_test_overlap([leaked])


@pytest.mark.parametrize("name", list_suites())
def test_dev_and_test_splits_are_apart(name: str) -> None:
    """Test items are not dev items reworded: neither check finds a dev item near one."""
    dev, test = (eval_texts([s]) for s in load_splits(name))
    assert check_leaks(dev, test).leaks == []
    assert check_leaks(dev, test, SHAPE, shape=True).leaks == []


def test_workbench_train_refuses_a_copied_test_template(tmp_path: Path, tmp_home: Path) -> None:
    from click.testing import CliRunner

    from workbench.cli import main

    item = load_suite("regional-policy", "test").items[0]
    leaked = _dialogs(tmp_path / "leak.jsonl", [_with_new_values(item.text, random.Random(2))])
    out = tmp_path / "adapters" / "x" / "v1"
    res = CliRunner().invoke(main, ["train", "--base", "tiny-glm", "--data", str(leaked),
                                    "--out", str(out), "--max-steps", "1"])
    assert res.exit_code != 0 and "Refusing to train" in res.output and item.id in res.output
    assert not out.exists()
