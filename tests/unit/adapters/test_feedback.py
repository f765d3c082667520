"""Feedback export (cleaning rules, KTO/DPO rows) and preference training from an adapter."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import load_file

from workbench.adapters.demo import make_random_adapter
from workbench.adapters.feedback import export_feedback, has_intent, turn_label
from workbench.adapters.registry import Registry
from workbench.adapters.train_pref import PrefConfig, train_preference
from workbench.store.chatlog import ChatLog, ChatTurn
from workbench.errors import InputError
from workbench.eval.arena import ArenaStore, Vote
from workbench.models.catalog import load_model

EVAL_TEXTS = ["Hi, where's my package right now? The tracking page hasn't changed since Monday."]


def turn(log: ChatLog, question: str, answer: str, lang: str = "en", rating: int | None = None,
         resolved: bool | None = None, variant: str = "cs@v1", region: str = "EU") -> str:
    tid = log.record(ChatTurn("c1", lang, region, True, "left", variant, "tiny-glm", question, answer))
    if rating is not None or resolved is not None:
        log.rate(tid, rating=rating, resolved=resolved)
    return tid


@pytest.fixture
def store(tmp_home: Path) -> Path:
    tmp_home.mkdir(parents=True, exist_ok=True)
    log, arena = ChatLog(), ArenaStore()
    # Two answers to one question, judged apart: one KTO pair and a DPO pair.
    turn(log, "Can I return my boots after 10 days?", "Yes, within 14 days.", rating=5)
    turn(log, "Can I return my boots after 10 days?", "Ask someone else.", rating=1, variant="base")
    # The same question again (a third answer) and a near-duplicate of it.
    turn(log, "Can I return my boots after 10 days?", "Yes.", rating=4)
    turn(log, "Can I return my boots after 10 days??!", "Sure.", resolved=True)
    turn(log, "can I return my boots after 10 day?", "Yes.", rating=5)
    # No usable judgement, small talk only, wrong language, an eval item paraphrase, PII.
    turn(log, "How long does shipping to Spain take?", "About 5 days.", rating=3)
    turn(log, "How long does shipping to Spain take?", "Unrated answer.")
    turn(log, "Hello, thanks!", "You're welcome.", rating=5)
    turn(log, "Where is the refund for my returned jacket?", "Votre remboursement arrive bientôt, "
         "il faut compter encore quelques jours ouvrables.", lang="en", rating=5)
    turn(log, "Hi, where is my package right now? The tracking page hasn't changed since Monday.",
         "It is on its way.", rating=5)
    turn(log, "Please send the invoice for my order to me at jane.doe@example.com today.",
         "Sent to jane.doe@example.com.", rating=4)
    arena.record(Vote("cs@v1", "base", "Wie lange dauert die Rückerstattung bei einer Rücksendung?",
                      "Die Erstattung dauert bis zu 14 Tage nach Eingang.", "Keine Ahnung.", "a", "de",
                      "EU"))
    arena.record(Vote("cs@v1", "base", "Quanto costa la spedizione per Milano?", "Gratis.",
                      "Cinque euro.", "tie", "it", "EU"))
    return tmp_home


def read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_labels_and_small_talk() -> None:
    assert turn_label(5, None) and turn_label(3, 1) and turn_label(None, 1)
    assert turn_label(5, 0) is False and turn_label(2, None) is False
    assert turn_label(3, None) is None and turn_label(None, None) is None
    assert not has_intent("Hi there. Thank you!", "en") and not has_intent("你好，谢谢", "zh")
    assert has_intent("我想退货", "zh") and has_intent("Wo ist mein Paket?", "de")


def test_export_applies_every_rule_and_writes_trl_rows(store: Path, tmp_path: Path) -> None:
    report = export_feedback(tmp_path / "fb", eval_texts=EVAL_TEXTS)
    removed = report.removed
    assert removed["unclear_signal"] == 2  # the 3-star turn and the arena tie
    assert removed["no_intent"] == 1 and removed["language"] == 1 and removed["eval_leak"] == 1
    assert removed["near_duplicate"] == 1  # "…10 day?" is close to the first question
    assert removed["exact_duplicate"] == 2  # the third and fourth answer to that question
    assert report.pii_masked == 0  # the store masked it already; nothing left to mask
    kto, dpo = read(tmp_path / "fb" / "kto.jsonl"), read(tmp_path / "fb" / "dpo.jsonl")
    assert (report.kto, report.dpo) == (len(kto), len(dpo)) == (5, 2)
    texts = json.dumps(kto + dpo, ensure_ascii=False)
    assert "jane.doe@example.com" not in texts
    boots = [r for r in dpo if "boots" in r["prompt"][-1]["content"]][0]
    assert boots["chosen"][0]["content"] == "Yes, within 14 days."
    assert boots["rejected"][0]["content"] == "Ask someone else."
    assert boots["prompt"][0]["role"] == "system" and "return" in boots["prompt"][0]["content"].lower()
    vote = [r for r in dpo if r["meta"]["lang"] == "de"][0]
    assert vote["chosen"][0]["content"].startswith("Die Erstattung")
    assert {r["label"] for r in kto} == {True, False}
    saved = json.loads((tmp_path / "fb" / "report.json").read_text())
    assert saved["removed"]["eval_leak"] == 1 and set(saved["sha256"]) == {"kto.jsonl", "dpo.jsonl"}
    with pytest.raises(InputError, match="already exists"):
        export_feedback(tmp_path / "fb", eval_texts=EVAL_TEXTS)


def test_cli_export_reports_rows_per_rule(store: Path, tmp_path: Path) -> None:
    from workbench.cli import main

    res = CliRunner().invoke(main, ["feedback", "export", "--out", str(tmp_path / "o"), "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output.strip().splitlines()[-1])
    assert set(out["removed"]) >= {"no_intent", "language", "eval_leak", "near_duplicate",
                                   "exact_duplicate", "unclear_signal"}
    assert (tmp_path / "o" / "kto.jsonl").is_file()


# ---- preference training ----------------------------------------------------------------
@pytest.fixture
def parent(tmp_path: Path) -> tuple[Registry, Path]:
    root = tmp_path / "adapters"
    loaded = load_model("tiny-glm")
    make_random_adapter(loaded.model, root / "cs" / "v1", base_model_id=loaded.model_id,
                        seed=3, rank=4)
    return Registry(root), root


@pytest.mark.parametrize("method", ["kto", "dpo"])
def test_preference_training_continues_the_parent(store: Path, tmp_path: Path, parent,
                                                  method: str) -> None:
    registry, root = parent
    export_feedback(tmp_path / "fb", eval_texts=EVAL_TEXTS)
    out = root / "cs" / "v2"
    res = train_preference("tiny-glm", tmp_path / "fb", "cs@v1", out,
                           PrefConfig(method=method, max_steps=3, lr=5e-3, batch_size=2,
                                      max_len=1024), registry=registry, progress=False)
    assert res.steps == 3 and len(res.losses) == 3
    card = json.loads((out / "card.json").read_text())
    data = (tmp_path / "fb" / f"{method}.jsonl").read_bytes()
    import hashlib

    assert card["training_data"]["sha256"] == hashlib.sha256(data).hexdigest()
    assert card["parent"] == "cs@v1" and card["kind"] == f"lora-{method}"
    assert card["training_data"]["export"]["removed"]["eval_leak"] == 1
    new, old = load_file(out / "adapter_model.safetensors"), \
        load_file(root / "cs" / "v1" / "adapter_model.safetensors")
    assert set(new) == set(old)  # the same adapter, continued: no reference copy saved
    assert any(not torch.equal(new[k], old[k]) for k in old)
    assert not (out / "ref").exists()
    assert registry.resolve("cs@v2").rank == 4


def test_bad_preference_inputs_change_nothing(tmp_path: Path, parent) -> None:
    registry, root = parent
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="Cannot read"):
        train_preference("tiny-glm", tmp_path / "empty", "cs@v1", root / "cs" / "v2",
                         PrefConfig(method="dpo"), registry=registry)
    with pytest.raises(InputError, match="Unknown training method"):
        train_preference("tiny-glm", tmp_path / "empty", "cs@v1", root / "cs" / "v2",
                         PrefConfig(method="orpo"), registry=registry)
    assert not (root / "cs" / "v2").exists()


def test_cli_train_dpo_from_a_version(store: Path, tmp_path: Path, parent) -> None:
    from workbench.cli import main

    _, root = parent  # the WORKBENCH_ADAPTERS folder of tmp_home
    export_feedback(tmp_path / "fb", eval_texts=EVAL_TEXTS)
    args = ["train", "--method", "dpo", "--base", "tiny-glm", "--data", str(tmp_path / "fb"),
            "--out", str(root / "cs" / "v3"), "--max-steps", "2", "--batch-size", "2"]
    res = CliRunner().invoke(main, args)
    assert res.exit_code != 0 and "--from" in res.output
    res = CliRunner().invoke(main, [*args, "--from", "cs@v1"])
    assert res.exit_code == 0, res.output
    assert "2 dpo steps" in res.output
    assert json.loads((root / "cs" / "v3" / "card.json").read_text())["parent"] == "cs@v1"


def test_templated_questions_compare_on_the_customer_words(tmp_home: Path, tmp_path: Path) -> None:
    tmp_home.mkdir(parents=True, exist_ok=True)
    log = ChatLog()
    template = 'Customer message (in German):\n"""{}"""\n\nReply in German and end with JSON.'
    turn(log, template.format("Ich möchte die Winterjacke zurückgeben, geht das noch?"), "Ja.",
         lang="de", rating=5)
    turn(log, template.format("Wann kommt meine Erstattung für die Schuhe an?"), "Bald.",
         lang="de", rating=1)
    turn(log, template.format("Hallo, danke!"), "Bitte.", lang="de", rating=5)
    report = export_feedback(tmp_path / "t", eval_texts=EVAL_TEXTS)
    # The shared English instructions neither make them near-duplicates nor a wrong language.
    assert report.removed["near_duplicate"] == 0 and report.removed["language"] == 0
    assert report.removed["no_intent"] == 1 and report.kto == 2


def test_loop_seeding_rates_the_models_answers_with_the_scorers(workbench, capsys) -> None:
    from workbench.devtools.feedback_demo import questions, rate, seed_store

    rows = questions(3, seed=0)  # two policy questions and one intent question, training data
    assert [r["task"] for r in rows] == ["policy", "policy", "intents"]
    stats = seed_store(workbench, rows, "a1", max_new_tokens=4)
    assert {v: s["answers"] for v, s in stats.items()} == {"a1": 3, "__base__": 3}
    turns = workbench.chatlog.turns()
    assert len(turns) == 6 and {t["variant"] for t in turns} == {"a1@v1", "base"}
    for t in turns:  # each stored rating is the scorers' verdict on that very answer
        row = rows[int(t["conversation_id"].split("-")[1])]
        assert (t["rating"], bool(t["resolved"])) == rate(row, t["answer_text"])
    assert "answering training questions" in capsys.readouterr().err
    # Ratings follow the verdict and the language: right in the customer's language is a 5.
    policy = next(r for r in rows if r["task"] == "policy")
    right = json.dumps({"eligible": policy["eligible"], "days": policy["days"]})
    wrong = json.dumps({"eligible": not policy["eligible"], "days": policy["days"]})
    assert rate(policy, right)[1] is True and rate(policy, wrong) == (2, False)
