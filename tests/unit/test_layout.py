"""Where product data lives and the helpers the tabs and stores share.

Phrase tables and the store's policy pack are data files; the training dialogs in
``workbench/data/train/`` are what the generator makes from them, byte for byte.
"""
from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path

import gradio as gr
import pytest
import yaml

from workbench.adapters import traindata
from workbench.config import DATA_ROOT, db_path, eval_sets_root, policy_dir
from workbench.errors import InputError, WorkbenchError
from workbench.eval.suite import load_suite
from workbench.domain.policy import faq_file, load_policies, policies_file
from workbench.domain.prompts import customer_prompt
from workbench.ui.common import guard


# ---- phrase files -> workbench/data/train -------------------------------------------------------------
def test_shipped_training_data_is_what_the_phrase_files_generate(tmp_path: Path) -> None:
    shipped = sorted(traindata.DEFAULT_OUT.glob("*.jsonl"))
    if not shipped:
        pytest.skip("data/train/*.jsonl not generated yet")
    assert traindata.main(["--out", str(tmp_path)]) == 0
    for path in shipped:
        assert (tmp_path / path.name).read_bytes() == path.read_bytes(), (
            f"{path} differs from what workbench/data/phrases/ generates: run python -m workbench.adapters.traindata")


def test_phrase_files_cover_every_language_and_region() -> None:
    for name in ("intents", "policy", "support", "regions"):
        assert traindata.phrases(name)  # raises InputError naming what is missing
    for entry in traindata.phrases("intents").values():  # no invisible spaces for editors
        assert all(g and g == g.strip() for g in entry["greetings"])


@pytest.fixture
def phrase_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A copy of workbench/data/phrases/ that a test may break; the loader's cache is cleared around it."""
    for src in traindata.PHRASES_DIR.glob("*.yaml"):
        (tmp_path / src.name).write_bytes(src.read_bytes())
    monkeypatch.setattr(traindata, "PHRASES_DIR", tmp_path)
    traindata.phrases.cache_clear()
    yield tmp_path
    traindata.phrases.cache_clear()


def test_phrase_file_missing_a_language_is_named(phrase_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = phrase_dir / "support.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    del data["th"]
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    with pytest.raises(InputError, match=r"support\.yaml: no entries for th\."):
        traindata.phrases("support")
    out = phrase_dir / "out"
    assert traindata.main(["--out", str(out)]) == 1
    assert "support.yaml: no entries for th." in capsys.readouterr().err
    assert not out.exists()


def test_phrase_file_with_bad_yaml_is_named(phrase_dir: Path) -> None:
    (phrase_dir / "regions.yaml").write_text("EU: [unclosed\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"regions\.yaml: cannot read the phrase file"):
        traindata.phrases("regions")


def test_excluded_items_come_from_the_policy_pack(tmp_path: Path) -> None:
    policies = load_policies()
    assert traindata.excluded_cases("JP", policies, policies_file()) == [
        ("regular", "opened"), ("cosmetics", "opened"), ("perishable", "new")]
    assert traindata.excluded_cases("BR", policies, policies_file()) == []
    # The store edits policies.yaml; the training data follows without a second copy to update.
    edited = {**policies, "BR": {**policies["BR"], "excluded": ["perishables", "opened software"]}}
    assert traindata.excluded_cases("BR", edited, tmp_path / "policies.yaml") == [
        ("perishable", "new"), ("software", "opened")]
    unknown = {**policies, "BR": {**policies["BR"], "excluded": ["swimwear"]}}
    with pytest.raises(InputError, match=r"policies\.yaml: region BR excludes 'swimwear', which "
                                         r"the 'exclusions' table of .*policy\.yaml does not know"):
        traindata.excluded_cases("BR", unknown, tmp_path / "policies.yaml")


def test_an_excluded_item_is_never_sampled_as_returnable() -> None:
    rng = random.Random(0)
    cases = {traindata._pick_case("EU", [("electronics", "new")], rng) for _ in range(500)}
    assert ("electronics", "new", "no_excluded") in cases
    assert not {c for c in cases if c[:2] == ("electronics", "new") and c[2] != "no_excluded"}


def test_exclusions_table_with_a_bad_item_case_is_named(phrase_dir: Path) -> None:
    path = phrase_dir / "policy.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("innerwear: [innerwear/new]", "innerwear: [underwear/new]"),
                    encoding="utf-8")
    with pytest.raises(InputError, match=r"policy\.yaml: exclusions: 'innerwear': 'underwear/new' "
                                         r"is not an item case"):
        traindata.excluded_cases("IN", load_policies(), policies_file())


# ---- the policy pack: one copy, read by chat, eval and training -------------------------------
def test_policy_pack_has_one_home() -> None:
    assert policies_file() == DATA_ROOT / "policy" / "policies.yaml" == policy_dir() / "policies.yaml"
    assert faq_file().is_file() and policies_file().is_file()
    # A second copy under eval_sets/ would drift from the one the chat grounds on.
    assert not list(eval_sets_root().glob("*/policies.yaml"))
    assert not list(eval_sets_root().glob("*/faq.yaml"))


def test_chat_and_eval_ground_on_the_same_policy_pack() -> None:
    policy = load_suite("regional-policy")
    assert policy.policies_path == policies_file()
    item = next(i for i in policy.items if i.region == "JP")
    chat_system = customer_prompt("?", lang="ja", region="JP")[0]["content"]
    assert chat_system.split("\n\n")[-1] == policy.grounding_text(item)
    support = load_suite("multilingual-support")
    answers = yaml.safe_load(faq_file().read_text(encoding="utf-8"))["entries"]
    assert all(e["answer"] in support.faq_text for e in answers)


def _faq_suite(tmp_path: Path) -> Path:
    folder = tmp_path / "mini-faq"
    folder.mkdir()
    (folder / "suite.yaml").write_text(yaml.safe_dump({
        "name": "mini-faq", "task": "freeform", "grounding": "faq", "prompt_template": "{text}",
        "scorers": ["facts"], "metrics": ["accuracy"]}), encoding="utf-8")
    (folder / "items.jsonl").write_text(json.dumps({
        "id": "a", "lang": "en", "text": "When is shipping free?", "expected": {"facts": ["49"]}}) + "\n",
        encoding="utf-8")
    return folder


def test_faq_suite_uses_the_store_faq_unless_it_has_its_own(tmp_path: Path) -> None:
    folder = _faq_suite(tmp_path)
    shared = load_suite(folder)
    assert shared.faq_text == load_suite("multilingual-support").faq_text
    (folder / "faq.yaml").write_text(yaml.safe_dump({"store": "Test shop", "entries": [
        {"question": "Free shipping?", "answer": "Over 49 EUR."}]}), encoding="utf-8")
    own = load_suite(folder)
    assert own.faq_text == "Store FAQ (Test shop):\n\nQ: Free shipping?\nA: Over 49 EUR."
    assert own.hash != shared.hash


# ---- shared helpers ---------------------------------------------------------------------------
def test_guard_turns_refusals_into_a_message() -> None:
    def refuse(x: int) -> str:
        raise WorkbenchError(f"no {x}")

    def crash() -> str:
        raise ValueError("bug")

    assert guard(lambda x, y=1: f"{x}+{y}")(2, y=3) == "2+3"
    # A refusal is a warning toast; every output keeps what it showed (gr.skip, not gr.Error).
    with pytest.warns(UserWarning, match="no 7"):
        assert guard(refuse)(7) == gr.skip()

    def stream(n: int):
        yield "first"
        raise WorkbenchError(f"no {n}")

    with pytest.warns(UserWarning, match="no 3"):
        assert list(guard(stream)(3)) == ["first", gr.skip()]
    with pytest.raises(ValueError):  # a bug is not a user's refused input: it stays a bug
        guard(crash)()
    assert guard(refuse).__name__ == "refuse"


def test_chat_log_and_eval_runs_share_one_database(tmp_home: Path) -> None:
    from workbench.store.chatlog import ChatLog
    from workbench.eval.store import EvalStore

    assert ChatLog().path == EvalStore().path == db_path() == tmp_home / "workbench.sqlite"
