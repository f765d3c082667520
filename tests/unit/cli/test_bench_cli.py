"""``workbench bench --peer-url`` against the workbench's own API on a tiny model, the sizing
search end to end, and the refusals that come before any model loads."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from apihelp import ADMIN, serve_tiny
from click.testing import CliRunner

from workbench.cli import main

TINY = ["--model", "tiny-glm", "--requests", "4", "--max-batch", "4"]


def bench(*args: str):
    return CliRunner().invoke(main, ["bench", *TINY, *args])


def last_json(output: str) -> dict:
    return json.loads(output.strip().splitlines()[-1])


@pytest.fixture
def short_outputs(monkeypatch) -> None:
    """Open-loop answers of 4 or 8 tokens, so each trace takes a moment on the tiny model."""
    import workbench.bench.open_loop as open_loop

    monkeypatch.setattr(open_loop, "OUTPUT_LENGTHS", (4, 8))


def test_peer_runs_both_workloads_on_the_engine_and_the_peer(tmp_home, tiny_loaded, make_adapter,
                                                              short_outputs) -> None:
    # The peer serves no adapter yet: the bench loads a1 there as a1@v1.
    with serve_tiny(tiny_loaded, make_adapter, adapters=()) as peer:
        make_adapter(tiny_loaded, "a1", "v1", seed=1, root=Path(os.environ["WORKBENCH_ADAPTERS"]))
        assert "a1" not in peer.wb.engine.adapters
        result = bench("--concurrency", "2", "--new-tokens", "4", "--rate", "50", "--adapters", "a1",
                       "--skip-baseline", "--peer-url", peer.v1, "--peer-api-key", ADMIN,
                       "--peer-dtype", "half", "--json")
        assert result.exit_code == 0, result.output
        assert peer.wb.served["a1"].ref == "a1@v1"
        served = peer.wb.telemetry.records()
    s = last_json(result.output)
    tok = s["tok_s"]
    assert set(tok) == {"closed/engine-mixed", "closed/engine-base", "closed/engine-single-adapter",
                        "closed/peer-mixed", "closed/peer-base", "closed/peer-single-adapter",
                        "open/engine", "open/peer"}
    assert all(v > 0 for v in tok.values())
    assert s["base_vs_peer"] == pytest.approx(tok["closed/engine-base"] / tok["closed/peer-base"], rel=0.01)
    assert s["mixed_vs_peer"] == pytest.approx(tok["closed/engine-mixed"] / tok["closed/peer-mixed"], rel=0.01)
    assert s["ttft_p95_vs_peer"] == pytest.approx(s["peer_ttft_p95_ms"] / s["engine_ttft_p95_ms"], rel=0.01)
    for key in ("engine_tok_s", "mixed_overhead", "open_engine_tok_s", "rate"):  # the usual keys stay
        assert key in s
    # Every peer request reached the peer, on base and on the adapter it was given.
    assert {r.ref for r in served} == {"base", "a1@v1"}
    assert sum(r.completion_tokens == 4 for r in served) >= 3 * 4  # the three closed-loop passes
    # The engine runs float32 or bfloat16 (its "auto", per CPU); the peer was said to run float16.
    assert s["engine_dtype"] in ("float32", "bfloat16") and s["peer_dtype"] == "float16"
    assert s["dtype_match"] is False
    assert f"WARNING: the engine runs {s['engine_dtype']} but the peer runs float16" in result.output


def test_peer_that_does_not_answer_fails_before_the_engine_runs(tmp_home, monkeypatch) -> None:
    import workbench.service.workbench as service

    monkeypatch.setattr(service.Workbench, "start", lambda *a, **k: pytest.fail("the engine started"))
    result = bench("--peer-url", "http://127.0.0.1:9/v1")
    assert result.exit_code != 0 and "No replica answered: http://127.0.0.1:9/v1" in result.output


def test_sizing_reports_requests_per_day_and_cost(tmp_home, short_outputs) -> None:
    result = bench("--p95-target", "30s", "--max-probes", "2", "--rate", "5", "--price-per-hour", "2.5",
                   "--json")
    assert result.exit_code == 0, result.output
    s = last_json(result.output)
    assert [p["rate"] for p in s["probes"]] == [5.0, 10.0] and s["p95_target_s"] == 30.0
    met = [p["rate"] for p in s["probes"] if p["met"]]
    assert met, "four short answers took more than 30 s"
    assert s["max_rate_per_s"] == max(met)
    assert s["requests_per_day_per_replica"] == round(max(met) * 86_400)
    assert s["cost_per_1k_requests"] == pytest.approx(2.5 / (max(met) * 3.6), rel=1e-3)
    assert "requests/day per replica" in result.output and "cost per 1,000 requests" in result.output


@pytest.mark.parametrize("args, message", [
    (["--p95-target", "0.8x"], "Invalid value for '--p95-target': Invalid duration '0.8x'"),
    (["--p95-target", "0ms"], "it must be longer than zero"),
    (["--p95-target", "1s", "--price-per-hour", "0"], "Invalid value for '--price-per-hour'"),
    (["--p95-target", "1s", "--workload", "closed-loop"], "--p95-target runs the open-loop workload only"),
    (["--p95-target", "1s", "--peer-url", "http://x/v1"], "run it without --peer-url"),
    (["--peer-url", "http://x/v1", "--backend", "openai", "--base-url", "http://y/v1"], "leave out --backend openai"),
])
def test_bad_values_are_refused_before_loading(args: list[str], message: str, monkeypatch) -> None:
    import workbench.service.workbench as service

    monkeypatch.setattr(service.Workbench, "start", lambda *a, **k: pytest.fail("a model loaded"))
    result = bench(*args)
    assert result.exit_code != 0 and message in result.output, result.output


def test_a_bad_price_in_the_environment_is_refused(monkeypatch) -> None:
    monkeypatch.setenv("WORKBENCH_PRICE_PER_HOUR", "two")
    result = bench("--p95-target", "1s")
    assert result.exit_code != 0 and "Invalid value for '--price-per-hour'" in result.output
