"""LoRA SFT: the label mask, PII masking, a tiny run that learns and loads, and data hygiene."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from workbench.service import lifecycle
from workbench.adapters.sft_data import IGNORE, encode_dialog, load_dialogs
from workbench.adapters.train import TrainConfig, train_adapter
from workbench.adapters.validate import validate_adapter
from workbench.errors import AdapterError, InputError
from workbench.models.catalog import load_model
from workbench.service.workbench import Workbench

LABELS = ["order_tracking", "refund_status", "account_login"]
TEXTS = {"order_tracking": "Where is my parcel? Order #4417283, mail a.b@example.com",
         "refund_status": "¿Cuándo llega mi reembolso? Llamad al +34 612 345 678",
         "account_login": "我无法登录我的账户。"}


def write_dialogs(path: Path, n: int = 24) -> Path:
    rows = []
    for i in range(n):
        label = LABELS[i % 3]
        rows.append({"messages": [
            {"role": "system", "content": "Route the message to one label."},
            {"role": "user", "content": TEXTS[label]},
            {"role": "assistant", "content": label}], "lang": "en", "task": "intents"})
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def test_label_mask_covers_only_the_assistant_turn(tiny_loaded) -> None:
    messages = [{"role": "system", "content": "S"}, {"role": "user", "content": "hello"},
                {"role": "assistant", "content": "refund_status"}]
    ex = encode_dialog(tiny_loaded.tokenizer, messages, 512)
    target = [t for t, lab in zip(ex.input_ids, ex.labels) if lab != IGNORE]
    text = tiny_loaded.tokenizer.decode(target)
    assert text.startswith("refund_status") and "hello" not in text
    assert ex.labels[0] == IGNORE
    # No assistant turn: nothing to learn from.
    assert encode_dialog(tiny_loaded.tokenizer, messages[:2], 512) is None


def test_pii_is_masked_before_training(tmp_path: Path) -> None:
    dialogs, files = load_dialogs([write_dialogs(tmp_path / "d.jsonl", 3)])
    blob = json.dumps(dialogs, ensure_ascii=False)
    assert "4417283" not in blob and "a.b@example.com" not in blob and "612 345 678" not in blob
    assert "[EMAIL]" in blob and "[ORDER_ID]" in blob and "[PHONE]" in blob
    assert len(files[0]["sha256"]) == 64 and files[0]["dialogs"] == 3


def test_bad_training_data_is_refused(tmp_path: Path, tiny_loaded) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "no messages here"}\n')
    with pytest.raises(InputError, match="line 1"):
        train_adapter(tiny_loaded, [bad], tmp_path / "out" / "x" / "v1", progress=False)


def test_tiny_training_run_learns_and_loads(tmp_home: Path, tmp_path: Path,
                                            workbench: Workbench) -> None:
    data = write_dialogs(tmp_path / "d.jsonl")
    out = workbench.registry.root / "tuned" / "v1"
    cfg = TrainConfig(max_steps=16, rank=4, lr=5e-3, batch_size=4, seed=3, save_every=8)
    result = train_adapter(load_model("tiny-glm"), [data], out, cfg, progress=False)
    assert result.loss_last < result.loss_first * 0.8
    card = json.loads((out / "card.json").read_text())
    assert card["base_model"] == "tiny-glm" and card["hyper_parameters"]["rank"] == 4
    assert card["training_data"]["sha256"] and card["training_data"]["bytes"] == data.stat().st_size
    assert card["train"]["steps"] == 16 and card["train"]["loss_curve"]
    assert sorted(p.name for p in out.iterdir()) == ["adapter_config.json",
                                                    "adapter_model.safetensors", "card.json"]
    validate_adapter(out, workbench.loaded)
    lifecycle.load(workbench, "tuned@v1")
    done = workbench.engine.generate([{"role": "user", "content": "hi"}], adapter="tuned",
                                     max_new_tokens=4)
    assert done.error is None
    # Same seed and data: the run is reproducible; an existing version is never overwritten.
    again = train_adapter(load_model("tiny-glm"), [data], tmp_path / "again" / "v1", cfg,
                          progress=False)
    assert again.losses == pytest.approx(result.losses, rel=1e-4)
    with pytest.raises(AdapterError, match="already exists"):
        train_adapter(load_model("tiny-glm"), [data], out, cfg, progress=False)


def test_resume_from_checkpoint_matches_a_straight_run(tmp_home: Path, tmp_path: Path) -> None:
    data = write_dialogs(tmp_path / "d.jsonl")
    cfg = TrainConfig(max_steps=8, rank=4, lr=5e-3, seed=1, save_every=4, dropout=0.0)
    ckpt = tmp_path / "ckpt"
    full = train_adapter(load_model("tiny-glm"), [data], tmp_path / "a" / "v1", cfg,
                         checkpoint_dir=ckpt, progress=False)
    resumed = train_adapter(load_model("tiny-glm"), [data], tmp_path / "b" / "v1", cfg,
                            resume=ckpt / "step-000004", progress=False)
    assert resumed.losses == pytest.approx(full.losses, rel=1e-3)


# ---- training data hygiene ------------------------------------------------------------------
def _eval_texts() -> list[str]:
    from workbench.adapters.traindata import eval_texts

    try:
        texts = eval_texts()
    except Exception as exc:  # noqa: BLE001 - suites being edited elsewhere: say so, don't fail here
        pytest.skip(f"eval suites not loadable: {exc}")
    if not texts:
        pytest.skip("no eval items yet")
    return texts


def test_generated_training_data_has_no_eval_text() -> None:
    from workbench.adapters import traindata

    texts = _eval_texts()
    data = traindata.build(seed=0)
    rows = [r for rows in data.values() for r in rows]
    assert len(data["intents"]) >= 15 * 12 * 3 and len(data["policy"]) >= 12 * 30
    assert traindata.eval_leaks(rows, texts) == []
    # The format is the eval's: same system prompt, same template, one label as the answer.
    intents = data["intents"][0]["messages"]
    assert "Answer with exactly one label" in intents[1]["content"]
    assert intents[2]["content"] in LABELS or "_" in intents[2]["content"]
    policy = data["policy"][0]["messages"][2]["content"]
    assert json.loads(policy.splitlines()[-1]).keys() == {"eligible", "days", "payer"}


def test_shipped_training_files_have_no_eval_text() -> None:
    from workbench.adapters.traindata import DEFAULT_OUT, eval_leaks

    files = sorted(DEFAULT_OUT.glob("*.jsonl"))
    if not files:
        pytest.skip("data/train/*.jsonl not generated yet")
    rows = [json.loads(line) for f in files for line in f.read_text(encoding="utf-8").splitlines()
            if line.strip()]
    assert eval_leaks(rows, _eval_texts()) == []


def test_policy_verdicts_follow_the_policy_pack() -> None:
    from workbench.adapters import traindata
    from workbench.domain.policy import load_policies

    _eval_texts()
    policies = load_policies()
    for row in traindata.build(seed=1)["policy"]:
        verdict = json.loads(row["messages"][-1]["content"].splitlines()[-1])
        assert verdict["days"] == policies[row["region"]]["return_window_days"]
        assert verdict["eligible"] == row["case"].endswith("/ok")
        payer = policies[row["region"]].get("return_shipping_payer")
        assert verdict["payer"] == ("store" if payer == "store" else "customer")
