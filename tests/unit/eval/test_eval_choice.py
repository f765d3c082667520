"""Multiple-choice (log-likelihood) and constrained-output scoring in eval runs."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from workbench.backends.remote import RemoteBackend
from workbench.engine import loglik
from workbench.engine.loglik import ChoiceItem
from workbench.errors import SuiteError, UnknownNameError
from workbench.eval.cards import record_cards
from workbench.eval.decoding import with_decoding
from workbench.eval.metrics import item_outcome, summarize
from workbench.eval.report import variant_differences
from workbench.eval.runner import run_eval
from workbench.eval.schema import Expected, Score, ScoreContext
from workbench.eval.scorers import verdict_format
from workbench.eval.store import EvalStore
from workbench.eval.suite import load_suite
from workbench.config import DATA_ROOT

LABELS = ["order_tracking", "return_policy", "refund_status"]
MC_SUITE = {
    "name": "mini-intents", "task": "classification", "grounding": "none", "labels": LABELS,
    "system_prompt": "Route the message.", "prompt_template": "{labels}\n{text}",
    "scorers": ["intent_label"], "metrics": ["accuracy", "acc", "acc_norm"],
    "output_type": "multiple_choice",
    "choices": {"order_tracking": "where my order is", "return_policy": "returning an item",
                "refund_status": "my refund"},
    "max_new_tokens": 3,
}
MC_ITEMS = [{"id": f"i{n}", "lang": lang, "text": text, "expected": {"intent": intent}}
            for n, (lang, text, intent) in enumerate([
                ("en", "Where is my parcel?", "order_tracking"),
                ("es", "¿Puedo devolver los zapatos?", "return_policy"),
                ("zh", "我的退款什么时候到？", "refund_status"),
                ("de", "Wo ist mein Paket?", "order_tracking")])]
SCHEMA = {"type": "object", "properties": {
    "eligible": {"type": "boolean"}, "days": {"type": "integer", "minimum": 0, "maximum": 365},
    "payer": {"enum": ["customer", "store"]}},
    "required": ["eligible", "days", "payer"], "additionalProperties": False}
VERDICT_SUITE = {
    "name": "mini-verdict", "task": "verdict", "grounding": "none",
    "system_prompt": "Decide the return.", "prompt_template": "{text}",
    "scorers": ["verdict", "verdict_format", "deflection"],
    "metrics": ["accuracy", "format_compliance", "resolution_rate"],
    "structured_output": {"json_schema": SCHEMA}, "max_new_tokens": 80,
}
VERDICT_ITEMS = [{"id": f"v{n}", "lang": "en", "text": text,
                  "expected": {"eligible": ok, "days": 14, "payer": "customer"}}
                 for n, (text, ok) in enumerate([("Return shoes after 3 days?", True),
                                                 ("Return a worn coat after 90 days?", False),
                                                 ("Can I send back a lamp?", True)])]


def write_suite(root: Path, cfg: dict, items: list[dict]) -> Path:
    folder = root / cfg["name"]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "suite.yaml").write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    (folder / "items.jsonl").write_text(
        "\n".join(json.dumps(i, ensure_ascii=False) for i in items) + "\n", encoding="utf-8")
    return folder


# ---- suite options ---------------------------------------------------------------------
@pytest.mark.parametrize("change, match", [
    ({"output_type": "multiple-choice"}, "Did you mean 'multiple_choice'"),
    ({"task": "freeform", "labels": None}, "needs a classification suite"),
    ({"choices": {"order_tracking": "x"}}, "missing: refund_status, return_policy"),
    ({"choices": ["a", "b"]}, "one per label"),
    ({"choices": ["a", "a", "b"]}, "same choice text"),
    ({"output_type": "generate_until"}, "only a multiple_choice suite takes choices"),
    ({"structured_output": {"grammar": "x"}}, "one key: json_schema or choice"),
])
def test_bad_options_name_the_field_and_line(tmp_path: Path, change: dict, match: str) -> None:
    cfg = {k: v for k, v in (MC_SUITE | change).items() if v is not None}
    folder = write_suite(tmp_path, cfg, MC_ITEMS if cfg.get("labels") else
                         [{"id": "x", "lang": "en", "text": "t", "expected": {}}])
    with pytest.raises(SuiteError, match=match) as err:
        load_suite(folder)
    assert "suite.yaml:" in err.value.message


def test_shipped_suites_declare_their_scoring() -> None:
    intents, policy = load_suite("multilingual-intents"), load_suite("regional-policy")
    assert intents.options.multiple_choice
    assert intents.options.choices == tuple(label.replace("_", " ") for label in intents.labels)
    shots = intents.options.fewshot
    assert all(sorted(e[1] for e in shots.for_lang(lang)) == sorted(intents.labels)
               for lang in {i.lang for i in intents.items})  # one example per intent and language
    # Drawn from the training data, which the leak check keeps apart from the eval items.
    train = (DATA_ROOT / "train" / "intents.jsonl").read_text(encoding="utf-8")
    assert all(json.dumps(e[0], ensure_ascii=False)[1:-1] in train for e in shots.examples)
    assert json.loads(policy.options.structured.json_schema)["required"] == ["eligible", "days",
                                                                             "payer"]
    assert [s.name for s in with_decoding([intents, policy], "both")] == [
        "multilingual-intents:dev", "regional-policy:dev", "regional-policy:dev:constrained"]
    assert [s.name for s in with_decoding([intents, policy], "constrained")] == [
        "multilingual-intents:dev", "regional-policy:dev:constrained"]
    with pytest.raises(UnknownNameError, match="Did you mean 'both'"):
        with_decoding([policy], "bth")


# ---- multiple choice in a run ----------------------------------------------------------
def test_run_reports_acc_and_generation_scores_side_by_side(workbench, tmp_path: Path) -> None:
    suite = load_suite(write_suite(tmp_path, MC_SUITE, MC_ITEMS))
    store, seen = EvalStore(), []
    result = run_eval(workbench, [suite], ["base", "a1"], store=store,
                      choice_progress=lambda done, total: seen.append((done, total)))
    assert result.status == "finished"
    n = 2 * len(suite.items)  # every item, for both variants, in language groups
    assert seen[-1] == (n, n) and [d for d, _ in seen] == sorted(d for d, _ in seen)
    df = store.results_frame(result.run_id)
    assert df["score:intent_label"].notna().all()  # generation scoring stays
    assert df["score:loglik"].notna().all() and df["score:loglik_norm"].notna().all()
    # The JSON line scripts read carries them too, with intervals.
    metrics = next(iter(result.summary.values())).as_json()["metrics"]
    assert {"acc", "acc_norm", "accuracy", "macro_f1"} <= set(metrics) and metrics["acc"]["low"] is not None
    # Each stored pick is the argmax of the engine's own log-likelihoods for that row.
    eng = workbench.engine
    for _, row in df.iterrows():
        item = suite.item(row["item_id"])
        res = eng.call_between_batches(lambda: loglik.score(
            eng.runner, [ChoiceItem(suite.messages(item), suite.options.choices, row["variant"])]))[0]
        want = LABELS[res.best] == item.expected.intent
        assert bool(row["score:loglik"]) is want
        assert bool(row["score:loglik_norm"]) is (LABELS[res.best_norm] == item.expected.intent)
    table = summarize(df, ["variant"])
    assert {"acc", "acc_low", "acc_high", "acc_norm", "acc_norm_low"} <= set(table.columns)
    for _, row in table.iterrows():
        assert row["acc_low"] <= row["acc"] <= row["acc_high"]
        part = df[df["variant"] == row["variant"]]
        assert row["acc"] == pytest.approx(part["score:loglik"].mean())
    # Resolution still follows the generated answer alone.
    assert (df["resolved"] == df["score:intent_label"].fillna(0).astype(int)).all()
    # The paired comparison covers the choice scores too (same items, bootstrap interval).
    diff = variant_differences(df)
    acc = diff[diff["metric"] == "acc"].iloc[0]
    part = {v: df[df["variant"] == v]["score:loglik"].mean() for v in ("__base__", "a1")}
    assert acc["Δ"] == pytest.approx(part["a1"] - part["__base__"]) and acc["Δ 95% CI"]
    assert "format_compliance" not in set(diff["metric"])  # no grammar in this suite: no row
    # The adapter's card keeps acc and acc_norm next to the generation scores.
    (ref,) = record_cards(workbench.registry, store, result.run_id)
    entry = workbench.registry.resolve(ref).card["eval"][f"{suite.name}@{suite.hash[:12]}"]
    assert entry["acc"] == pytest.approx(part["a1"], abs=1e-4) and "acc_norm" in entry
    assert "format_compliance" not in entry


def test_optional_metrics_appear_only_with_their_scores() -> None:
    df = pd.DataFrame({"variant": ["x", "x"], "correct": [1, 0], "resolved": [1, 0],
                       "expected_intent": [None, None], "prediction": [None, None],
                       "service_ms": [1.0, 2.0], "service_ttft_ms": [1.0, 1.0],
                       "tokens_per_s": [1.0, 1.0]})
    assert "acc" not in summarize(df, ["variant"]).columns
    df["score:loglik"] = [1.0, 1.0]
    table = summarize(df, ["variant"])
    assert table.loc[0, "acc"] == 1.0 and "acc_norm" not in table.columns


# ---- format compliance, free and constrained -----------------------------------------------
def test_verdict_format_is_strict_about_form_only() -> None:
    ctx = ScoreContext("en", Expected(eligible=True, days=14))
    good = 'Sure. {"eligible": false, "days": 3, "payer": "store"}'
    assert verdict_format(good, ctx).passed  # wrong values, right form
    for bad in ('{"eligible": True, "days": 14, "payer": "store"}',
                '{"eligible": true, "days": "14", "payer": "store"}',
                '{"eligible": true, "days": 14}', '{"eligible": true, "days": 14, "payer": "me"}',
                "no json at all"):
        assert verdict_format(bad, ctx).passed is False, bad
    assert verdict_format("x", ScoreContext("en", Expected())).passed is None


def test_format_compliance_is_not_part_of_resolution() -> None:
    scores = {"verdict": Score(True), "verdict_format": Score(False), "deflection": Score(True)}
    assert item_outcome(["verdict", "verdict_format", "deflection"], scores).resolved


def test_constrained_run_is_always_well_formed(workbench, tmp_path: Path) -> None:
    """Needs the engine's sampler to honour SamplingParams.structured."""
    suite = load_suite(write_suite(tmp_path, VERDICT_SUITE, VERDICT_ITEMS))
    store = EvalStore()
    result = run_eval(workbench, [suite], ["base", "a1"], store=store, decoding="both")
    df = store.results_frame(result.run_id)
    assert set(df["suite"]) == {"mini-verdict", "mini-verdict:constrained"}
    constrained = df[df["suite"] == "mini-verdict:constrained"]
    assert len(constrained) == 6
    for answer in constrained["answer"]:
        obj = json.loads(answer)
        assert set(obj) == {"eligible", "days", "payer"}
    table = summarize(df, ["suite", "variant"])
    got = table.set_index(["suite", "variant"])["format_compliance"]
    assert (got.loc["mini-verdict:constrained"] == 1.0).all()
    # Resuming the finished run finds both copies of the suite under their recorded names.
    again = run_eval(workbench, run_id=result.run_id, store=store)
    assert again.generated == 0 and again.status == "finished"


def test_a_backend_without_a_local_model_skips_choice_scoring(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from workbench.eval.choice import choice_scores

    suite = load_suite(write_suite(tmp_path, MC_SUITE, MC_ITEMS))
    work = [SimpleNamespace(suite=suite, item=it, variant="__base__") for it in suite.items]
    remote = SimpleNamespace(capabilities=RemoteBackend.capabilities,
                             loglik=lambda items: pytest.fail("called"))
    assert choice_scores(remote, work) == {}
