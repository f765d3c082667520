"""The peer's summary: ratios from the two sides' passes, dtypes named and compared."""
from __future__ import annotations

import pytest

from workbench.bench.closed_loop import BenchReport, BenchSettings, PassResult
from workbench.bench.dtypes import described_dtype, dtype_warning, normalize_dtype
from workbench.bench.open_loop import OpenLoopReport, OpenLoopSettings, OpenPass
from workbench.bench.peer import PeerReport


def closed_pass(name: str, tok_s: float) -> PassResult:
    return PassResult(name, tok_s, 100.0, 200.0, 300.0, 10.0, int(tok_s * 10), 4.0)


def open_pass(name: str, tok_s: float, ttft_p95_ms: float) -> OpenPass:
    return OpenPass(name, tok_s, 50.0, ttft_p95_ms, 20.0, 40.0, 500.0, 900.0, 1000.0, 3.0, 30.0, 300)


def report(engine_dtype: str = "float32", peer_dtype: str = "float32") -> PeerReport:
    closed = BenchReport(BenchSettings("tiny-glm", 4, 8, 16, ["a1"], False), "tiny", {
        "engine-mixed": closed_pass("engine-mixed", 90.0), "engine-base": closed_pass("engine-base", 80.0),
        "engine-single-adapter": closed_pass("engine-single-adapter", 85.0),
        "peer-mixed": closed_pass("peer-mixed", 30.0), "peer-base": closed_pass("peer-base", 160.0),
        "peer-single-adapter": closed_pass("peer-single-adapter", 50.0)}, 900.0, adapters=["a1"])
    opened = OpenLoopReport(OpenLoopSettings("tiny-glm", 0.5, 8, ["a1"], static=False, sequential=False),
                            "tiny", {"engine": open_pass("engine", 70.0, 400.0),
                                     "peer": open_pass("peer", 60.0, 1000.0)}, 950.0)
    return PeerReport(closed, opened, "http://peer/v1", engine_dtype, peer_dtype)


def test_ratios_come_from_the_two_passes() -> None:
    s = report().summary()
    assert s["base_vs_peer"] == pytest.approx(80.0 / 160.0)
    assert s["mixed_vs_peer"] == pytest.approx(90.0 / 30.0)
    assert s["single_adapter_vs_peer"] == pytest.approx(85.0 / 50.0)
    assert s["ttft_p95_vs_peer"] == pytest.approx(1000.0 / 400.0)  # bigger is better: peer / engine
    assert s["tok_s"] == {"closed/engine-mixed": 90.0, "closed/engine-base": 80.0,
                          "closed/engine-single-adapter": 85.0, "closed/peer-mixed": 30.0,
                          "closed/peer-base": 160.0, "closed/peer-single-adapter": 50.0,
                          "open/engine": 70.0, "open/peer": 60.0}
    # The two workloads' own keys stay; an open-loop key the closed loop has gets open_.
    assert s["engine_tok_s"] == 90.0 and s["open_engine_tok_s"] == 70.0 and s["peer_tok_s"] == 60.0
    assert s["peak_rss_mb"] == 900.0 and s["open_peak_rss_mb"] == 950.0
    assert s["ttft_p95_vs_static"] is None  # no static pass ran
    assert (s["engine_dtype"], s["peer_dtype"], s["dtype_match"]) == ("float32", "float32", True)


def test_a_missing_pass_gives_no_ratio() -> None:
    r = report()
    r.open = None
    s = r.summary()
    assert s["ttft_p95_vs_peer"] is None and s["base_vs_peer"] == pytest.approx(0.5)


def test_dtypes_are_compared_and_a_difference_is_said() -> None:
    assert report().warning is None
    mismatch = report("float32", "bfloat16")
    assert mismatch.summary()["dtype_match"] is False
    assert "engine runs float32 but the peer runs bfloat16" in mismatch.warning
    unknown = report("float32", "unknown")
    assert unknown.summary()["dtype_match"] is None and "--peer-dtype" in unknown.warning


def test_dtype_names_and_what_a_backend_says() -> None:
    assert [normalize_dtype(n) for n in ("bf16", "torch.bfloat16", "FP32", "half", None)] == [
        "bfloat16", "bfloat16", "float32", "float16", "unknown"]
    assert described_dtype({"backend": {"kind": "local", "dtype": "bfloat16"}}) == "bfloat16"
    assert described_dtype({}) is None and described_dtype(None) is None
    assert dtype_warning("bfloat16", "bfloat16") is None
