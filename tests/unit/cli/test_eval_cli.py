"""The eval CLI on the tiny GLM: JSON line, runs, HTML report, CSV export, errors."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from workbench.cli import main
from workbench.eval.suite import load_suite

SUITE = {
    "name": "mini-policy", "task": "verdict", "grounding": "none",
    "system_prompt": "Decide returns.", "prompt_template": "({lang_name}) {text}",
    "scorers": ["verdict", "facts", "deflection", "language_match"],
    "metrics": ["accuracy", "resolution_rate"], "max_new_tokens": 4,
}
ITEMS = [
    {"id": f"p{i}", "lang": lang, "text": text, "region": region,
     "expected": {"eligible": True, "days": 14, "facts": ["14"]}}
    for i, (lang, text, region) in enumerate([
        ("de", "Kann ich zurückgeben?", "EU"), ("en", "Can I return it?", "GB"),
        ("ko", "반품할 수 있나요?", "KR"), ("th", "คืนสินค้าได้ไหม", "AU"), ("ru", "Можно вернуть?", "EU")])
]


@pytest.fixture
def cli_env(tmp_home: Path, tiny_loaded, make_adapter, tmp_path: Path) -> Path:
    """A 5-item suite folder, and adapter a1 registered for tiny-glm."""
    make_adapter(tiny_loaded, "a1", "v1", seed=1)
    folder = tmp_path / "mini-policy"
    folder.mkdir()
    (folder / "suite.yaml").write_text(yaml.safe_dump(SUITE), encoding="utf-8")
    (folder / "items.jsonl").write_text(
        "\n".join(json.dumps(i, ensure_ascii=False) for i in ITEMS) + "\n", encoding="utf-8")
    return folder


def _run(*args: str) -> object:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_eval_json_runs_report_export(cli_env: Path, tmp_path: Path) -> None:
    res = _run("eval", "--suite", str(cli_env), "--variants", "base,a1", "--model", "tiny-glm", "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert set(out["variants"]) == {"base", "a1"}
    for summary in out["variants"].values():
        assert set(summary) == {"accuracy", "resolution_rate", "p50_ms", "p95_ms", "p99_ms", "n", "metrics"}
        assert summary["n"] == 5 and summary["p50_ms"] > 0
        # every metric the run has, with its interval where there is one
        assert {"accuracy", "resolution_rate", "p50_ms"} <= set(summary["metrics"])
        assert set(summary["metrics"]["resolution_rate"]) == {"value", "n", "low", "high"}
    assert "By language" in res.stdout and "By region" in res.stdout
    assert "Against the first variant, same items (paired bootstrap, 95%)" in res.stdout
    run_id = out["run_id"]
    # Headless runs (stderr not a terminal) log the run id and progress lines.
    assert f"Run {run_id}: 10 generations (if interrupted: workbench eval --resume {run_id})" in res.stderr
    assert "Evaluating: 5/10 (50%)" in res.stderr and "Evaluating: done, 10/10 in " in res.stderr
    assert "\r" not in res.stderr

    listing = _run("runs")
    assert listing.exit_code == 0 and run_id in listing.stdout and "10/10" in listing.stdout

    again = _run("eval", "--resume", run_id, "--model", "tiny-glm", "--json")
    assert again.exit_code == 0 and json.loads(again.stdout.strip().splitlines()[-1])["run_id"] == run_id

    html = tmp_path / "r.html"
    rep = _run("report", run_id, run_id, "--out", str(html))
    assert rep.exit_code == 0, rep.output
    page = html.read_text(encoding="utf-8")
    assert 'class="plotly-graph-div"' in page and "Compared with run" in page
    assert "<script src=" not in page          # plotly.js is inlined: the file is self-contained

    csv = tmp_path / "r.csv"
    exp = _run("export", run_id, "--out", str(csv))
    assert exp.exit_code == 0
    df = pd.read_csv(csv)
    assert len(df) == 10 and {"answer", "score:verdict", "total_ms", "variant_label"} <= set(df.columns)


def test_cli_errors_are_clean(cli_env: Path, tmp_path: Path) -> None:
    res = _run("eval", "--suite", "no-such-suite", "--model", "tiny-glm")
    assert res.exit_code == 2 and "Unknown suite 'no-such-suite'" in res.stderr
    res = _run("report", "nope", "--out", str(tmp_path / "x.html"))
    assert res.exit_code == 2 and "Unknown eval run 'nope'" in res.stderr
    assert not (tmp_path / "x.html").exists()
    from workbench.cli.eval_cmds import _checked
    from workbench.eval.suite import list_suites

    loaded, *_ = _checked((), "base", None, "tiny-glm", False)  # no --suite: every suite
    assert [s.base_name for s in loaded[::2]] == list_suites() and len(loaded) >= 6
    assert {s.split for s in loaded} == {"dev", "test"}  # both splits by default
    tests, *_ = _checked(("regional-policy",), "base", None, "tiny-glm", False, "test")
    assert [s.name for s in tests] == ["regional-policy:test"] and len(tests[0].items) >= 120
    res = _run("eval", "--suite", str(cli_env), "--split", "test", "--model", "tiny-glm")
    assert res.exit_code == 2 and "Unknown split of suite mini-policy 'test'" in res.stderr
    res = _run("eval", "--suite", str(cli_env), "--variants", "base,zz", "--model", "tiny-glm")
    assert res.exit_code == 2 and "Unknown adapter 'zz'" in res.stderr
    assert "Example: workbench eval --suite" in _run("eval", "--help").stdout


def test_full_run_records_eval_summary_on_adapter_card(cli_env: Path) -> None:
    from workbench.adapters.registry import Registry

    sampled = _run("eval", "--suite", str(cli_env), "--variants", "base,a1", "--model", "tiny-glm",
                   "--limit", "2", "--json")
    assert sampled.exit_code == 0
    assert "eval" not in Registry().resolve("a1@v1").card  # a sample never touches the card
    full = _run("eval", "--suite", str(cli_env), "--variants", "base,a1@v1", "--model", "tiny-glm",
                "--json")
    assert full.exit_code == 0, full.output
    run_id = json.loads(full.stdout.strip().splitlines()[-1])["run_id"]
    card = Registry().resolve("a1@v1").card
    digest = load_suite(cli_env).hash
    entry = card["eval"][f"mini-policy@{digest[:12]}"]
    assert entry["n"] == 5 and entry["run_id"] == run_id and entry["suite_hash"] == digest
    assert 0.0 <= entry["resolution_rate"] <= 1.0
    line = Registry().resolve("a1@v1").eval_summary
    assert line == f"mini-policy [{digest[:8]}] {entry['resolution_rate']:.1%} (n=5)"


def test_a_suite_reusing_a_name_gets_its_own_card_entry(cli_env: Path, tmp_path: Path) -> None:
    """Same suite name, other items: both results stay on the card; a rerun of the same
    suite replaces only its own entry."""
    from workbench.adapters.registry import Registry

    other = tmp_path / "custom" / "mini-policy"
    other.mkdir(parents=True)
    (other / "suite.yaml").write_text(yaml.safe_dump(SUITE), encoding="utf-8")
    (other / "items.jsonl").write_text(
        "\n".join(json.dumps(i, ensure_ascii=False) for i in ITEMS[:3]) + "\n", encoding="utf-8")
    runs = {}
    for folder in (cli_env, other, cli_env):
        res = _run("eval", "--suite", str(folder), "--variants", "a1", "--model", "tiny-glm", "--json")
        assert res.exit_code == 0, res.output
        runs[folder] = json.loads(res.stdout.strip().splitlines()[-1])["run_id"]
    ev = Registry().resolve("a1@v1").card["eval"]
    by_hash = {e["suite_hash"]: e for e in ev.values()}
    assert len(ev) == 2 and {e["suite"] for e in ev.values()} == {"mini-policy"}
    assert by_hash[load_suite(cli_env).hash]["n"] == 5
    assert by_hash[load_suite(cli_env).hash]["run_id"] == runs[cli_env]  # the rerun replaced it
    assert by_hash[load_suite(other).hash]["n"] == 3
    assert by_hash[load_suite(other).hash]["run_id"] == runs[other]


@pytest.fixture
def split_suite(cli_env: Path) -> Path:
    """The mini suite with a test split: its items asked twice, as two phrasings per group."""
    cfg = {**SUITE, "splits": {"dev": "items.jsonl", "test": "test.jsonl"}}
    (cli_env / "suite.yaml").write_text(yaml.safe_dump(cfg), encoding="utf-8")
    test = [{**item, "id": f"{item['id']}-{k}", "group": item["id"], "text": text}
            for item in ITEMS[:3] for k, text in enumerate((item["text"], item["text"] + " Please?"))]
    (cli_env / "test.jsonl").write_text(
        "\n".join(json.dumps(i, ensure_ascii=False) for i in test) + "\n", encoding="utf-8")
    return cli_env


def test_split_json_gives_each_split_with_intervals_and_the_gap(split_suite: Path) -> None:
    from workbench.adapters.registry import Registry

    for split, names in (("test", {"test"}), ("dev", {"dev"}), ("both", {"dev", "test"})):
        res = _run("eval", "--suite", str(split_suite), "--split", split, "--variants", "base,a1@v1",
                   "--model", "tiny-glm", "--json")
        assert res.exit_code == 0, res.output
        out = json.loads(res.stdout.strip().splitlines()[-1])
        entry = out["splits"]["mini-policy"]
        assert names <= set(entry) and set(entry) - names <= {"generalization_gap"}
        for name in names:
            assert set(entry[name]) == {"base", "a1@v1"}
            assert set(entry[name]["a1@v1"]["resolution_rate"]) == {"value", "n", "low", "high"}
            assert entry[name]["a1@v1"]["resolution_rate"]["n"] == (5 if name == "dev" else 6)
        # Three groups of two phrasings each: consistency is over groups, test split only.
        assert ("paraphrase_consistency" in entry.get("test", {}).get("base", {})) == ("test" in names)
        if "test" in names:
            assert entry["test"]["base"]["paraphrase_consistency"]["n"] == 3
    gap = entry["generalization_gap"]["a1@v1"]
    dev, test = entry["dev"]["a1@v1"], entry["test"]["a1@v1"]
    assert gap["resolution_rate"] == pytest.approx(
        dev["resolution_rate"]["value"] - test["resolution_rate"]["value"], abs=1e-3)
    assert "Dev and test splits" in res.stdout
    # The card: one entry per split; the test one is the headline, with dev and the gap beside it.
    card = Registry().resolve("a1@v1").card["eval"]
    by_split = {e.get("split"): e for e in card.values()}
    assert by_split["test"]["headline"] and by_split["test"]["suite"] == "mini-policy:test"
    assert by_split["test"]["dev"]["resolution_rate"] == by_split["dev"]["resolution_rate"]
    assert set(by_split["test"]["generalization_gap"]) >= {"accuracy", "resolution_rate"}
    assert len(by_split["test"]["resolution_rate_ci"]) == 2 and "paraphrase_consistency" in by_split["test"]
