"""The prepared GPU check, dry-run on the CPU with tiny models, so it cannot rot between GPU runs."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from workbench.devtools import gpu_check, gpu_check_parts
from workbench.devtools.gpu_check import CheckFailed, greedy_gap, parted_at_confident_step
from workbench.devtools.gpu_check_bench import bench_options

EXPECTED = ["environment", "quantize", "train_lora_step", "engine_mixed_adapters",
            "engine_prefix_reuse", "engine_hot_swap", "train_serves_on_int4", "decode_capture",
            "bench_prepare",
            "bench_float32_closed-loop", "bench_float32_open-loop"]


@pytest.mark.slow
def test_dry_run_passes_every_check_and_writes_the_summary_to_out(
        tmp_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OUT", str(tmp_path / "out"))
    assert gpu_check.main(["--dry-run"]) == 0
    summary = json.loads((tmp_path / "out" / "gpu_check.json").read_text())
    checks = {c["name"]: c for c in summary["checks"]}
    assert list(checks) == EXPECTED and summary["ok"] and summary["plan"] == "dry-run"
    # Open loop is skipped only while `workbench bench` lacks the workload.
    may_skip = set() if "--workload" in bench_options() else {"bench_float32_open-loop"}
    assert {n for n, c in checks.items() if c["status"] != "pass"} <= may_skip
    assert summary["environment"]["torch"] == torch.__version__
    assert any("AwqLinear" in k or "QuantLinear" in k for k in checks["quantize"]["details"]["kernels"])
    mixed = checks["engine_mixed_adapters"]["details"]["rows"]
    assert max(r["batch_size"] for r in mixed) == 4 and all(r["alone_batch_size"] == 1 for r in mixed)
    assert all(r["cached_tokens"] > 0 for r in checks["engine_prefix_reuse"]["details"]["rows"])
    assert checks["engine_hot_swap"]["details"]["swap_began_mid_request"]
    assert checks["bench_float32_closed-loop"]["details"]["summary"]["engine_tok_s"] > 0
    capture = checks["decode_capture"]["details"]
    # No CUDA here: the second column ran the bucketed step eagerly, and the summary says so.
    assert capture["captured"] is False and set(capture["buckets"]) == {"1", "2"}
    assert capture["modes"] == ["off", "static"] and capture["decode"]["eager_steps"] > 0
    assert all(b["parted_rows"] == [] and b["eager"]["ms_per_step"] > 0
               for b in capture["buckets"].values())


def test_tolerance_rule_flags_only_confident_departures() -> None:
    logits = torch.tensor([[5.0, 1.0, 0.0], [2.0, 1.95, 0.0], [0.0, 3.0, 1.0]])  # [S=3, V=3]
    assert greedy_gap(logits, [0, 0, 1]) == 0.0
    assert greedy_gap(logits, [0, 1, 1]) == pytest.approx(0.05)  # a near-tie: within 2 * 0.1
    assert greedy_gap(logits, [1, 0, 1]) == pytest.approx(4.0)  # far from greedy: wrong model
    assert parted_at_confident_step([0, 0, 1], [0, 0, 1], logits, 0.1) is None
    assert parted_at_confident_step([0, 0, 1], [0, 1, 2], logits, 0.1) is None  # parted at a tie
    assert parted_at_confident_step([0, 0, 1], [1, 0, 1], logits, 0.1) == 0


def test_a_failed_check_gives_exit_1_and_is_in_the_summary(
        tmp_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(run: gpu_check.Run) -> dict:
        raise CheckFailed("INT4 logits too far from float", {"logit_cosine": 0.2})

    monkeypatch.setattr(gpu_check_parts, "quantize_check", broken)
    monkeypatch.setattr(gpu_check_parts, "train_check", lambda run: None)
    out = tmp_path / "s.json"
    assert gpu_check.main(["--dry-run", "--skip-bench", "--out", str(out)]) == 1
    summary = json.loads(out.read_text())
    assert summary["failed"] == ["quantize"] and not summary["ok"]
    quantize = summary["checks"][1]
    assert quantize["details"]["logit_cosine"] == 0.2 and "too far" in quantize["error"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU answer")
def test_full_plan_without_a_gpu_exits_2(tmp_home: Path, tmp_path: Path) -> None:
    out = tmp_path / "s.json"
    assert gpu_check.main(["--out", str(out)]) == 2
    summary = json.loads(out.read_text())
    assert summary["failed"] == ["environment"] and summary["plan"] == "gpu"


def test_capture_check_fails_when_captured_tokens_leave_eager(
        tmp_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from workbench.devtools import gpu_check_capture
    from workbench.devtools.gpu_check_core import Run

    real = gpu_check_capture._timed

    def stale_graph(engine, batch, n):  # a captured run that replays a wrong step
        seconds, tokens = real(engine, batch, n)
        if engine.config.decode_graphs == "off":
            return seconds, tokens
        return seconds, [[(t + 7) % 50 for t in row] for row in tokens]

    monkeypatch.setattr(gpu_check_capture, "_timed", stale_graph)
    run = Run("dry-run", tmp_path / "summary.json")
    result = run.check("decode_capture", lambda: gpu_check_capture._capture(run))
    assert result.status == "fail" and "confident step" in result.error
    assert all(b["rows_identical"] == 0 and b["parted_rows"] for b in result.details["buckets"].values())
