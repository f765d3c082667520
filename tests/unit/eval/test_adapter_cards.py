"""Eval results on adapter cards, keyed by suite name and content hash."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from workbench.adapters.registry import CARD_FILE, CONFIG_FILE, Registry, eval_key
from workbench.errors import AdapterError

LEGACY = {"multilingual-intents": {"accuracy": 0.2167, "resolution_rate": 0.2167, "n": 180,
                                   "run_id": "old"}}


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    folder = tmp_path / "adapters" / "cs" / "v1"
    folder.mkdir(parents=True)
    (folder / CONFIG_FILE).write_text("{}")
    (folder / CARD_FILE).write_text(json.dumps({"base_model": "tiny-glm", "eval": LEGACY}))
    return Registry(tmp_path / "adapters")


def _result(suite: str, digest: str, rate: float, n: int, run: str) -> dict:
    return {"suite": suite, "suite_hash": digest, "accuracy": rate, "resolution_rate": rate,
            "n": n, "run_id": run}


def test_same_name_other_items_never_overwrites(registry: Registry) -> None:
    a, b = "a" * 64, "b" * 64
    registry.set_eval_summary("cs@v1", [_result("regional-policy", a, 0.25, 72, "r1")])
    registry.set_eval_summary("cs@v1", [_result("regional-policy", b, 0.5, 6, "r2")])
    ev = registry.resolve("cs@v1").card["eval"]
    assert ev["regional-policy@" + a[:12]]["run_id"] == "r1"
    assert ev["regional-policy@" + b[:12]]["run_id"] == "r2"
    assert ev["multilingual-intents"] == LEGACY["multilingual-intents"]  # older entries stay
    # A rerun of the very same suite replaces its own entry only.
    registry.set_eval_summary("cs@v1", [_result("regional-policy", a, 0.3, 72, "r3")])
    ev = registry.resolve("cs@v1").card["eval"]
    assert len(ev) == 3 and ev["regional-policy@" + a[:12]]["run_id"] == "r3"
    line = registry.resolve("cs@v1").eval_summary
    assert line == ("multilingual-intents 21.7% (n=180) · regional-policy [aaaaaaaa] 30.0% (n=72)"
                    " · regional-policy [bbbbbbbb] 50.0% (n=6)")


def test_a_shared_hash_prefix_gets_a_longer_key() -> None:
    first, second = "c" * 12 + "1" * 52, "c" * 12 + "2" * 52
    entries = {eval_key({}, "s", first): {"suite_hash": first}}
    key = eval_key(entries, "s", second)
    assert key == "s@" + second[:24] and key not in entries
    assert eval_key(entries, "s", first) == "s@" + first[:12]


def test_results_without_a_hash_are_refused(registry: Registry) -> None:
    before = (registry.resolve("cs@v1").path / CARD_FILE).read_text()
    with pytest.raises(AdapterError, match="suite_hash"):
        registry.set_eval_summary("cs@v1", [{"suite": "x", "accuracy": 1.0}])
    assert (registry.resolve("cs@v1").path / CARD_FILE).read_text() == before
