"""Service telemetry: one record per finished request feeds Prometheus and a window buffer.

:class:`Telemetry` is the single place request outcomes are counted. The engine calls
:meth:`Telemetry.observe` (through the Workbench's listener) once for every request that
ends; that one call updates

* the Prometheus registry (:attr:`Telemetry.registry`, served at ``/metrics``) with the
  metric names and types vLLM exports, so existing dashboards work, each carrying
  ``model_name`` (the base) **and** ``adapter`` / ``adapter_version`` labels (``base`` and
  ``""`` for the base model) — see :data:`METRIC_NAMES`; gauges (running requests per
  variant, waiting requests in all with ``adapter=""``, loaded adapters, resident and CUDA
  memory) are read from the engine at scrape time;
* a bounded in-memory ring buffer of :class:`RequestRecord` (newest last, at most
  ``capacity`` records) for live views.

Window queries, for the Monitor tab and ``workbench top``::

    tel.window(300)                 # WindowStats over the last 5 minutes, all variants
    tel.window(300, adapter="a1")   # only requests served by adapter a1 (any version)
    tel.window(300, adapter="a1@v2")  # only that version
    tel.windows()                   # {"5m": ..., "15m": ..., "60m": ...}
    tel.by_adapter(900)             # {"base": WindowStats, "a1@v2": WindowStats, ...}
    tel.records(since_s=60)         # the raw RequestRecord objects, oldest first
    tel.live()                      # LiveGauges: running, waiting, rss, CUDA memory now

:class:`WindowStats` holds: request count and requests/s, TTFT and end-to-end latency
P50/P95/P99 (seconds), output tokens/s, the mean running and waiting counts seen when
requests finished, the mean batch size, the prefix-cache hit rate (cached / prompt tokens),
errors and cancellations, and resident memory (last and peak). Rates divide by the window
length, or by the time since the oldest kept request arrived when the history is shorter
than the window (a server up for 2 minutes reports its 60-minute rate over 2 minutes).
All methods are thread-safe; times are wall-clock (``time.time()``) so windows line up with
what people see on a clock.
"""
from __future__ import annotations

import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
import psutil
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.process_collector import ProcessCollector

from workbench.engine.request import BASE_LABEL, EngineSnapshot, ReplicaState, Request
from workbench.telemetry.gauges import LABELS, GaugeCollector, cuda_allocated, cuda_utilization

WINDOWS = {"5m": 300.0, "15m": 900.0, "60m": 3600.0}
# vLLM's finished_reason values, from the engine's finish_reason.
FINISHED_REASON = {"eos": "stop", "stop": "stop", "length": "length", "cancelled": "abort",
                   "error": "error"}
METRIC_NAMES = (
    "vllm:time_to_first_token_seconds", "vllm:inter_token_latency_seconds",
    "vllm:request_time_per_output_token_seconds", "vllm:e2e_request_latency_seconds",
    "vllm:request_queue_time_seconds", "vllm:request_prompt_tokens",
    "vllm:request_generation_tokens", "vllm:num_requests_running", "vllm:num_requests_waiting",
    "vllm:prompt_tokens_total", "vllm:generation_tokens_total", "vllm:request_success_total",
    "vllm:prefix_cache_queries_total", "vllm:prefix_cache_hits_total",
    "workbench:client_disconnects_total", "workbench:feedback_total", "workbench:adapter_loaded", "workbench:resident_memory_bytes",
    "workbench:cuda_memory_allocated_bytes", "workbench:cuda_utilization_percent",
    "workbench:route_request_success_total", "workbench:route_generation_tokens_total",
    "workbench:route_time_to_first_token_seconds", "workbench:route_e2e_request_latency_seconds",
    "process_resident_memory_bytes",
)
# vLLM's buckets, trimmed to the range a CPU engine reaches.
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0,
                   80.0, 160.0, 320.0, 640.0)
ITL_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0,
               2.5, 5.0, 10.0)
TOKEN_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000)


@dataclass(frozen=True)
class RequestRecord:
    """One finished request, as the window queries see it."""

    # Wall-clock time it ended (s since the epoch).
    finished_at: float
    # Adapter name ("base" for the base model) and the version that served it ("" for base).
    adapter: str
    adapter_version: str
    # vLLM's finished_reason: stop, length, abort or error.
    finished_reason: str
    # Seconds queued, to the first token, end to end (None when no token came).
    queue_s: float | None
    ttft_s: float | None
    e2e_s: float | None
    # Token counts.
    prompt_tokens: int
    cached_tokens: int
    completion_tokens: int
    # Rows that shared its batch.
    batch_size: int
    # Engine load and process memory when it ended.
    running: int
    waiting: int
    rss_bytes: int
    # The A/B route the request named ("" when it named a model directly); its arm is ``ref``.
    route: str = ""

    @property
    def ref(self) -> str:
        """``name@version`` (``base`` for the base model)."""
        return f"{self.adapter}@{self.adapter_version}" if self.adapter_version else self.adapter

    @property
    def route_arm(self) -> str:
        """``route NAME: arm`` for a routed request, "" otherwise (a row of its own in views)."""
        return f"route {self.route}: {self.ref}" if self.route else ""


@dataclass(frozen=True)
class WindowStats:
    """Aggregates over the records of one time window (see the module docstring)."""

    window_s: float
    requests: int
    requests_per_s: float
    ttft_p50_s: float | None
    ttft_p95_s: float | None
    ttft_p99_s: float | None
    e2e_p50_s: float | None
    e2e_p95_s: float | None
    e2e_p99_s: float | None
    tokens_per_s: float
    mean_running: float | None
    mean_waiting: float | None
    mean_batch: float | None
    prefix_hit_rate: float | None
    errors: int
    cancelled: int
    rss_last_bytes: int | None
    rss_peak_bytes: int | None

    def as_dict(self) -> dict[str, float | int | None]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class LiveGauges:
    """What the engine and the process are doing right now."""

    running: int
    waiting: int
    loaded_adapters: tuple[str, ...]
    rss_bytes: int
    cuda_allocated_bytes: int | None
    # GPU busy percentage (None without a GPU or NVML).
    cuda_utilization_percent: float | None = None
    # How the engine's decode steps run ("eager", "CUDA graphs (...)", ...).
    decode: str = "eager"
    # Each replica's state behind a replicated backend (empty otherwise).
    replicas: tuple[ReplicaState, ...] = ()


def _pct(values: list[float], q: float) -> float | None:
    return float(np.percentile(values, q)) if values else None


def _mean(values: Iterable[float]) -> float | None:
    vals = list(values)
    return float(sum(vals) / len(vals)) if vals else None


def summarize(records: list[RequestRecord], window_s: float, now: float,
              since: float | None = None) -> WindowStats:
    """WindowStats of ``records`` (all inside the window ending at ``now``); ``since`` is when
    recording began (the first request's arrival), for windows longer than the history."""
    span = window_s if since is None else max(min(window_s, now - since), 1e-3)
    ttft = [r.ttft_s for r in records if r.ttft_s is not None and r.completion_tokens]
    e2e = [r.e2e_s for r in records if r.e2e_s is not None and r.finished_reason in ("stop", "length")]
    prompt = sum(r.prompt_tokens for r in records)
    rss = [r.rss_bytes for r in records if r.rss_bytes]
    return WindowStats(
        window_s=window_s, requests=len(records), requests_per_s=len(records) / span,
        ttft_p50_s=_pct(ttft, 50), ttft_p95_s=_pct(ttft, 95), ttft_p99_s=_pct(ttft, 99),
        e2e_p50_s=_pct(e2e, 50), e2e_p95_s=_pct(e2e, 95), e2e_p99_s=_pct(e2e, 99),
        tokens_per_s=sum(r.completion_tokens for r in records) / span,
        mean_running=_mean(r.running for r in records), mean_waiting=_mean(r.waiting for r in records),
        mean_batch=_mean(r.batch_size for r in records if r.batch_size),
        prefix_hit_rate=(sum(r.cached_tokens for r in records) / prompt) if prompt else None,
        errors=sum(r.finished_reason == "error" for r in records),
        cancelled=sum(r.finished_reason == "abort" for r in records),
        rss_last_bytes=rss[-1] if rss else None, rss_peak_bytes=max(rss) if rss else None,
    )


SnapshotFn = Callable[[], EngineSnapshot]
# What the gauges read when the backend cannot say (none attached, or it failed).
IDLE = EngineSnapshot(0, 0, (), (), ())
VersionsFn = Callable[[], dict[str, str]]


@dataclass
class Telemetry:
    """Prometheus metrics and the recent-request ring buffer of one served model."""

    # The base model's id (vLLM's model_name label).
    model_name: str
    # engine.snapshot: running / waiting counts and adapter keys, read at scrape time.
    snapshot: SnapshotFn | None = None
    # Adapter name -> version served now.
    versions: VersionsFn = field(default=lambda: {})
    # Most records kept (oldest dropped first).
    capacity: int = 20_000
    # Clock for records and windows; tests pass a fake one.
    clock: Callable[[], float] = time.time

    def __post_init__(self) -> None:
        self._records: deque[RequestRecord] = deque(maxlen=self.capacity)
        self._lock = threading.Lock()
        self._proc = psutil.Process(os.getpid())
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        self.registry.register(GaugeCollector(self))
        self._build_metrics()

    def _build_metrics(self) -> None:
        reg, lab = self.registry, LABELS

        def hist(name: str, doc: str, buckets: tuple) -> Histogram:
            return Histogram(name, doc, lab, buckets=buckets, registry=reg)

        self.ttft = hist("vllm:time_to_first_token_seconds", "Time to first token.", LATENCY_BUCKETS)
        self.itl = hist("vllm:inter_token_latency_seconds", "Time between output tokens.", ITL_BUCKETS)
        self.tpot = hist("vllm:request_time_per_output_token_seconds",
                         "Mean time per output token of each request.", ITL_BUCKETS)
        self.e2e = hist("vllm:e2e_request_latency_seconds", "End-to-end request latency.", LATENCY_BUCKETS)
        self.queue = hist("vllm:request_queue_time_seconds", "Time waiting before running.", LATENCY_BUCKETS)
        self.prompt_hist = hist("vllm:request_prompt_tokens", "Prompt tokens per request.", TOKEN_BUCKETS)
        self.gen_hist = hist("vllm:request_generation_tokens", "Generated tokens per request.", TOKEN_BUCKETS)
        self.prompt_tokens = Counter("vllm:prompt_tokens", "Prompt tokens processed.", lab, registry=reg)
        self.generation_tokens = Counter("vllm:generation_tokens", "Tokens generated.", lab, registry=reg)
        self.success = Counter("vllm:request_success", "Requests ended, by finished_reason.",
                               (*lab, "finished_reason"), registry=reg)
        self.prefix_queries = Counter("vllm:prefix_cache_queries", "Prompt tokens looked up in the "
                                      "prefix cache.", lab, registry=reg)
        self.prefix_hits = Counter("vllm:prefix_cache_hits", "Prompt tokens served from the "
                                   "prefix cache.", lab, registry=reg)
        self.disconnects = Counter("workbench:client_disconnects", "Requests cancelled because the "
                                   "client went away mid-response.", lab, registry=reg)
        self.feedback_given = Counter("workbench:feedback", "Customer feedback received, per variant "
                                      "(name@version or base) and outcome.",
                                      ("model_name", "variant", "outcome"), registry=reg)
        # Per A/B route arm: separate families, so vLLM's label sets stay as dashboards expect.
        arm = ("model_name", "route", "arm")
        self.route_success = Counter("workbench:route_request_success", "Routed requests ended, per "
                                     "arm and finished_reason.", (*arm, "finished_reason"), registry=reg)
        self.route_tokens = Counter("workbench:route_generation_tokens", "Tokens generated for routed "
                                    "requests, per arm.", arm, registry=reg)
        self.route_ttft = Histogram("workbench:route_time_to_first_token_seconds", "Time to first "
                                    "token of routed requests.", arm, buckets=LATENCY_BUCKETS, registry=reg)
        self.route_e2e = Histogram("workbench:route_e2e_request_latency_seconds", "End-to-end latency "
                                   "of routed requests.", arm, buckets=LATENCY_BUCKETS, registry=reg)

    # ---- recording ---------------------------------------------------------------------------
    def observe(self, req: Request, adapter: str | None, version: str | None,
                route: str | None = None) -> RequestRecord:
        """Count one ended request (``adapter`` None for base; ``route`` the A/B route it named)
        everywhere; returns its record."""
        record = self._record(req, adapter or BASE_LABEL, version or "", route or "")
        if record.route:
            self._observe_route(record)
        labels = (self.model_name, record.adapter, record.adapter_version)
        self.success.labels(*labels, record.finished_reason).inc()
        m = req.metrics
        self.prompt_tokens.labels(*labels).inc(m.prompt_tokens)
        self.generation_tokens.labels(*labels).inc(m.completion_tokens)
        self.prefix_queries.labels(*labels).inc(m.prompt_tokens)
        self.prefix_hits.labels(*labels).inc(m.cached_tokens)
        self.prompt_hist.labels(*labels).observe(m.prompt_tokens)
        self.gen_hist.labels(*labels).observe(m.completion_tokens)
        if record.queue_s is not None:
            self.queue.labels(*labels).observe(record.queue_s)
        if m.completion_tokens and record.ttft_s is not None:
            self.ttft.labels(*labels).observe(record.ttft_s)
        if record.e2e_s is not None and record.finished_reason in ("stop", "length"):
            self.e2e.labels(*labels).observe(record.e2e_s)
        if m.tpot_ms is not None:
            self.tpot.labels(*labels).observe(m.tpot_ms / 1000.0)
        itl = self.itl.labels(*labels)
        times = list(m.token_times)
        for a, b in zip(times, times[1:]):
            itl.observe(max(b - a, 0.0))
        with self._lock:
            self._records.append(record)
        return record

    def _observe_route(self, record: RequestRecord) -> None:
        labels = (self.model_name, record.route, record.ref)
        self.route_success.labels(*labels, record.finished_reason).inc()
        self.route_tokens.labels(*labels).inc(record.completion_tokens)
        if record.completion_tokens and record.ttft_s is not None:
            self.route_ttft.labels(*labels).observe(record.ttft_s)
        if record.e2e_s is not None and record.finished_reason in ("stop", "length"):
            self.route_e2e.labels(*labels).observe(record.e2e_s)

    def feedback(self, variant: str, rating: int | None, resolved: bool | None,
                 escalated: bool | None) -> None:
        """Count one feedback: each outcome it gives (rating_N, resolved_yes/no, escalated_yes/no)."""
        outcomes = [f"rating_{rating}"] if rating is not None else []
        outcomes += [f"{name}_{'yes' if value else 'no'}" for name, value in
                     (("resolved", resolved), ("escalated", escalated)) if value is not None]
        for outcome in outcomes:
            self.feedback_given.labels(self.model_name, variant, outcome).inc()

    def client_disconnect(self, adapter: str | None, version: str | None) -> None:
        """Count a request cancelled because its client disconnected."""
        self.disconnects.labels(self.model_name, adapter or BASE_LABEL, version or "").inc()

    def _record(self, req: Request, adapter: str, version: str, route: str = "") -> RequestRecord:
        m = req.metrics
        snap = self._snapshot()
        sec = (lambda ms: None if ms is None else ms / 1000.0)
        return RequestRecord(
            finished_at=self.clock(), adapter=adapter, adapter_version=version,
            finished_reason=FINISHED_REASON.get(req.finish_reason or "", "error"),
            queue_s=sec(m.queue_ms), ttft_s=sec(m.ttft_ms), e2e_s=sec(m.total_ms),
            prompt_tokens=m.prompt_tokens, cached_tokens=m.cached_tokens,
            completion_tokens=m.completion_tokens, batch_size=m.batch_size,
            running=snap.running, waiting=snap.waiting,
            rss_bytes=self._rss(), route=route)

    def add(self, record: RequestRecord) -> None:
        """Append a ready-made record to the buffer only (imports, tests)."""
        with self._lock:
            self._records.append(record)

    # ---- queries -------------------------------------------------------------------------------
    def records(self, since_s: float | None = None, adapter: str | None = None) -> list[RequestRecord]:
        """Records of the last ``since_s`` seconds (all kept when None), oldest first.

        ``adapter`` keeps one variant: a name (every version), ``name@version``, or ``base``.
        """
        with self._lock:
            recs = list(self._records)
        if since_s is not None:
            start = self.clock() - since_s
            recs = [r for r in recs if r.finished_at >= start]
        if adapter is not None:
            recs = [r for r in recs if adapter in (r.adapter, r.ref)]
        return recs

    def window(self, seconds: float, adapter: str | None = None) -> WindowStats:
        return summarize(self.records(seconds, adapter), seconds, self.clock(), self._since())

    def windows(self, adapter: str | None = None) -> dict[str, WindowStats]:
        """The 5, 15 and 60 minute windows."""
        return {key: self.window(secs, adapter) for key, secs in WINDOWS.items()}

    def by_adapter(self, seconds: float) -> dict[str, WindowStats]:
        """WindowStats per ``name@version`` (and ``base``) seen in the window."""
        recs = self.records(seconds)
        now = self.clock()
        refs = sorted({r.ref for r in recs})
        since = self._since()
        return {ref: summarize([r for r in recs if r.ref == ref], seconds, now, since) for ref in refs}

    def by_route_arm(self, seconds: float) -> dict[str, WindowStats]:
        """WindowStats per ``route NAME: arm`` seen in the window (routed requests only)."""
        recs = [r for r in self.records(seconds) if r.route]
        now, since = self.clock(), self._since()
        keys = sorted({r.route_arm for r in recs})
        return {k: summarize([r for r in recs if r.route_arm == k], seconds, now, since) for k in keys}

    def live(self) -> LiveGauges:
        snap = self._snapshot()
        return LiveGauges(snap.running, snap.waiting, tuple(snap.loaded_adapters), self._rss(),
                          cuda_allocated(), cuda_utilization(), snap.decode, snap.replicas)

    def exposition(self) -> bytes:
        """The Prometheus text format of every metric."""
        return generate_latest(self.registry)

    # ---- helpers ---------------------------------------------------------------------------
    def _since(self) -> float | None:
        """Arrival of the oldest request kept (None: nothing recorded yet)."""
        with self._lock:
            first = self._records[0] if self._records else None
        return None if first is None else first.finished_at - (first.e2e_s or 0.0)

    def _snapshot(self) -> EngineSnapshot:
        if self.snapshot is None:
            return IDLE
        try:
            return self.snapshot()
        except Exception:  # telemetry never breaks serving
            return IDLE

    def _rss(self) -> int:
        try:
            return int(self._proc.memory_info().rss)
        except psutil.Error:
            return 0
