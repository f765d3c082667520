"""The eval store and runner: item-by-item writes, resume after a kill, bad input harmless."""
from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
import yaml

from workbench.errors import StoreError, UnknownNameError
from workbench.eval.metrics import get_metric
from workbench.eval.runner import run_eval
from workbench.eval.store import EvalStore

SUITE = {
    "name": "mini-support", "task": "freeform", "grounding": "none",
    "system_prompt": "Answer briefly.", "prompt_template": "({lang_name}) {text}",
    "scorers": ["facts", "deflection", "language_match"], "metrics": ["accuracy", "resolution_rate"],
    "max_new_tokens": 4,
}
ITEMS = [
    {"id": f"s{i}", "lang": lang, "text": text, "region": region, "expected": {"facts": ["14"]}}
    for i, (lang, text, region) in enumerate([
        ("en", "Can I return shoes?", "US"), ("es", "¿Puedo devolverlo?", "MX"),
        ("zh", "我可以退货吗？", "CN"), ("ar", "هل يمكنني الإرجاع؟", "SA"),
        ("ja", "返品できますか？", "JP")])
]


class Stop(Exception):
    """Stands in for the process being killed."""


@pytest.fixture
def suite_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "mini-support"
    folder.mkdir()
    (folder / "suite.yaml").write_text(yaml.safe_dump(SUITE), encoding="utf-8")
    (folder / "items.jsonl").write_text(
        "\n".join(json.dumps(i, ensure_ascii=False) for i in ITEMS) + "\n", encoding="utf-8")
    return folder


def _rows(store: EvalStore, run_id: str) -> dict:
    with sqlite3.connect(store.path) as db:
        rows = db.execute("SELECT suite, item_id, variant, answer, created FROM eval_answers "
                          "WHERE run_id = ?", (run_id,)).fetchall()
    return {r[:3]: r[3:] for r in rows}


def test_resume_after_kill_loses_nothing_and_redoes_nothing(workbench, suite_dir: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    store = EvalStore()
    sent: list[int] = []
    real = workbench.engine.generate_many

    def spy(specs, on_done=None):
        specs = list(specs)
        sent.append(len(specs))
        return real(specs, on_done=on_done)

    monkeypatch.setattr(workbench.engine, "generate_many", spy)
    started = {}

    def killer(done: int, total: int) -> None:
        if done >= 3:
            raise Stop()

    with pytest.raises(Stop):
        run_eval(workbench, [suite_dir], ["base", "a1"], store=store, progress=killer,
                 on_start=lambda rec: started.update(id=rec.run_id))
    run_id = started["id"]
    assert store.get_run(run_id).status == "interrupted"
    before = _rows(store, run_id)
    assert len(before) == 3

    seen = []
    result = run_eval(workbench, run_id=run_id, store=store, progress=lambda d, t: seen.append((d, t)))
    after = _rows(store, run_id)
    assert result.status == "finished" and result.done == result.total == 10
    assert sent == [10, 7]                      # only the missing pairs were generated again
    assert all(after[k] == v for k, v in before.items())  # stored answers untouched
    assert len(after) == 10 and seen[0] == (3, 10) and seen[-1] == (10, 10)
    assert set(result.summary) == {"__base__", "a1"}
    assert result.summary["a1"].n == 5

    # Resuming a finished run is a no-op.
    again = run_eval(workbench, run_id=run_id, store=store)
    assert again.generated == 0 and sent == [10, 7, 0]


def test_results_frame_and_run_record(workbench, suite_dir: Path) -> None:
    store = EvalStore()
    result = run_eval(workbench, [suite_dir], ["base", "a2"], limit=2, store=store)
    rec = store.get_run(result.run_id)
    assert rec.variants == ["__base__", "a2"] and rec.adapters["a2"] == "a2@v1"
    assert rec.suites[0].name == "mini-support" and rec.suites[0].n_items == 2 and rec.total == 4
    assert rec.model == "tiny-glm" and "torch" in rec.packages and rec.engine["max_batch_size"] == 4
    df = store.results_frame(result.run_id)
    assert len(df) == 4 and {"score:facts", "score:language_match", "total_ms"} <= set(df.columns)
    assert df["total_ms"].notna().all()
    assert [r.run_id for r in store.list_runs()] == [result.run_id]
    # Latency metrics leave out the wait behind the run's own queued items.
    assert (df["service_ms"] - (df["total_ms"] - df["queue_ms"])).abs().max() < 1e-6
    assert (df["service_ms"] <= df["total_ms"]).all() and (df["service_ttft_ms"] <= df["service_ms"]).all()
    assert get_metric("p50_ms")(df).value == pytest.approx(df["service_ms"].median())


def test_unknown_variant_lists_known(workbench, suite_dir: Path) -> None:
    with pytest.raises(UnknownNameError, match=r"Unknown variant 'a22'. Did you mean 'a2'\? Known: a1, a2, base"):
        run_eval(workbench, [suite_dir], ["base", "a22"])
    assert EvalStore().list_runs() == []       # nothing recorded for a refused run


def test_bad_input_changes_nothing(workbench, suite_dir: Path) -> None:
    store = EvalStore()
    result = run_eval(workbench, [suite_dir], ["base"], limit=1, store=store)
    before = _rows(store, result.run_id)
    with pytest.raises(UnknownNameError, match="Unknown eval run 'nope'"):
        run_eval(workbench, run_id="nope", store=store)
    with pytest.raises(StoreError, match="Unknown run status"):
        store.set_status(result.run_id, "bogus")
    # The suite changed since the run: resuming is refused, the run keeps its results.
    (suite_dir / "items.jsonl").write_text(json.dumps(ITEMS[0]) + "\n", encoding="utf-8")
    store.set_status(result.run_id, "interrupted")
    with pytest.raises(StoreError, match="changed since run"):
        run_eval(workbench, run_id=result.run_id, store=store)
    assert _rows(store, result.run_id) == before
    assert store.get_run(result.run_id).status == "interrupted"
