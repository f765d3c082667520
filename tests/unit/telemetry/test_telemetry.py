"""Telemetry: the ring buffer's window queries (fake clock) and the Prometheus families."""
from __future__ import annotations


import pytest

from workbench.engine import Request
from workbench.engine.request import EngineSnapshot, RequestMetrics
from workbench.telemetry.collector import RequestRecord, Telemetry


class Clock:
    def __init__(self) -> None:
        self.now = 10_000.0

    def __call__(self) -> float:
        return self.now


def record(at: float, adapter: str = "a1", version: str = "v1", e2e: float = 1.0, ttft: float = 0.1,
           reason: str = "stop", tokens: int = 10, prompt: int = 100, cached: int = 50) -> RequestRecord:
    return RequestRecord(at, adapter, version, reason, 0.01, ttft, e2e, prompt, cached, tokens, 4,
                         running=2, waiting=1, rss_bytes=1000)


def test_windows_count_only_their_records() -> None:
    clock = Clock()
    tel = Telemetry("m", clock=clock)
    for i in range(60):  # one request a minute for an hour, e2e 1..60 s
        tel.add(record(clock.now - 3600 + 60 * (i + 1) - 1, e2e=float(i + 1)))
    w5, w15, w60 = (tel.windows()[k] for k in ("5m", "15m", "60m"))
    assert (w5.requests, w15.requests, w60.requests) == (5, 15, 60)
    assert w5.requests_per_s == pytest.approx(5 / 300)
    assert w5.e2e_p50_s == pytest.approx(58.0) and w60.e2e_p99_s == pytest.approx(59.41)
    assert w5.tokens_per_s == pytest.approx(50 / 300)
    assert w5.prefix_hit_rate == pytest.approx(0.5) and w5.mean_batch == 4
    assert w5.mean_running == 2 and w5.mean_waiting == 1 and w5.rss_peak_bytes == 1000


def test_per_adapter_and_version_queries() -> None:
    clock = Clock()
    tel = Telemetry("m", clock=clock)
    tel.add(record(clock.now - 10, "a1", "v1", reason="length"))
    tel.add(record(clock.now - 5, "a1", "v2", reason="abort"))
    tel.add(record(clock.now - 1, "base", "", reason="error"))
    assert set(tel.by_adapter(60)) == {"a1@v1", "a1@v2", "base"}
    assert tel.window(60, adapter="a1").requests == 2
    assert tel.window(60, adapter="a1@v2").cancelled == 1
    assert tel.window(60, adapter="base").errors == 1
    empty = tel.window(60, adapter="nobody")
    assert empty.requests == 0 and empty.e2e_p95_s is None and empty.requests_per_s == 0


def test_ring_buffer_is_bounded() -> None:
    clock = Clock()
    tel = Telemetry("m", clock=clock, capacity=100)
    for i in range(250):
        tel.add(record(clock.now - 250 + i))
    recs = tel.records()
    assert len(recs) == 100 and recs[0].finished_at == clock.now - 100


def test_observe_feeds_prometheus_and_buffer_once() -> None:
    snap = EngineSnapshot(running=1, waiting=3, running_adapters=("a1", "__base__"),
                          waiting_adapters=("a1",), loaded_adapters=("a1",))
    tel = Telemetry("tiny", snapshot=lambda: snap, versions=lambda: {"a1": "v2"})
    req = Request(messages=[{"role": "user", "content": "hi"}], adapter="a1")
    req.finish_reason = "eos"
    req.metrics = RequestMetrics(queue_ms=5, ttft_ms=50, total_ms=250, tpot_ms=50, prompt_tokens=20,
                                 cached_tokens=8, completion_tokens=5, batch_size=2,
                                 token_times=[1.0, 1.05, 1.1, 1.15, 1.2])
    tel.observe(req, "a1", "v2")
    text = tel.exposition().decode()
    labels = 'adapter="a1",adapter_version="v2",model_name="tiny"'
    assert ('vllm:request_success_total{adapter="a1",adapter_version="v2",finished_reason="stop",'
            'model_name="tiny"} 1.0') in text
    assert f"vllm:prompt_tokens_total{{{labels}}} 20.0" in text
    assert f"vllm:prefix_cache_hits_total{{{labels}}} 8.0" in text
    assert f"vllm:inter_token_latency_seconds_count{{{labels}}} 4.0" in text
    assert f"vllm:time_to_first_token_seconds_count{{{labels}}} 1.0" in text
    assert f"vllm:num_requests_running{{{labels}}} 1.0" in text
    assert 'vllm:num_requests_waiting{adapter="",adapter_version="",model_name="tiny"} 3.0' in text
    assert f"workbench:adapter_loaded{{{labels}}} 1.0" in text
    assert "process_resident_memory_bytes" in text
    (rec,) = tel.records()
    assert rec.ref == "a1@v2" and rec.finished_reason == "stop" and rec.running == 1
    live = tel.live()
    assert live.waiting == 3 and live.rss_bytes > 0


def test_routed_requests_get_figures_per_route_arm() -> None:
    tel = Telemetry("tiny")
    for arm_version, route in (("v2", "cs"), ("v2", "cs"), ("v3", "cs"), ("v2", None)):
        req = Request(messages=[{"role": "user", "content": "hi"}], adapter="a1")
        req.finish_reason = "eos"
        req.metrics = RequestMetrics(ttft_ms=40, total_ms=200, prompt_tokens=9, completion_tokens=3,
                                     batch_size=1, token_times=[1.0, 1.1, 1.2])
        tel.observe(req, "a1", arm_version, route)
    arms = tel.by_route_arm(60)
    assert {k: s.requests for k, s in arms.items()} == {"route cs: a1@v2": 2, "route cs: a1@v3": 1}
    assert tel.window(60).requests == 4  # the whole still counts every request once
    text = tel.exposition().decode()
    assert ('workbench:route_request_success_total{arm="a1@v2",finished_reason="stop",'
            'model_name="tiny",route="cs"} 2.0') in text
    assert 'workbench:route_e2e_request_latency_seconds_count{arm="a1@v3",model_name="tiny",route="cs"} 1.0' in text
    # vLLM's families keep their label sets: no route label there.
    assert 'vllm:request_success_total{adapter="a1",adapter_version="v2",finished_reason="stop",model_name="tiny"} 3.0' in text
