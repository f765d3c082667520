"""Gauges ``/metrics`` reads at scrape time: running / waiting per variant, loaded adapters,
process memory, and CUDA memory and utilisation where there is a GPU."""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from prometheus_client.core import GaugeMetricFamily

from workbench.engine.request import BASE_ADAPTER, BASE_LABEL, ReplicaState

LABELS = ("model_name", "adapter", "adapter_version")


def cuda_allocated() -> int | None:
    try:
        import torch

        return int(torch.cuda.memory_allocated()) if torch.cuda.is_available() else None
    except Exception:  # a broken CUDA setup must not break a scrape
        return None


def cuda_utilization() -> float | None:
    """GPU busy percentage over the last sample period (NVML through torch); None without one."""
    try:
        import torch

        if not torch.cuda.is_available():
            return None
        return float(torch.cuda.utilization())
    except Exception:  # no NVML, or a driver that does not report it
        return None


class GaugeCollector:
    """Gauges read at scrape time: running / waiting per variant, loaded adapters, memory."""

    def __init__(self, tel: Any) -> None:
        self.tel = tel

    def describe(self) -> list:
        return []  # collected lazily; describing would call the engine at registration

    def collect(self) -> Iterator[GaugeMetricFamily]:
        tel = self.tel
        snap = tel._snapshot()
        versions = tel.versions()
        running = GaugeMetricFamily("vllm:num_requests_running", "Requests running, per variant.",
                                    labels=LABELS)
        counts = _count(snap.running_adapters, versions)
        counts.setdefault((BASE_LABEL, ""), 0)
        for (adapter, version), n in sorted(counts.items()):
            running.add_metric([tel.model_name, adapter, version], n)
        yield running
        # The engine counts waiting requests as a whole, not per adapter: adapter="" is all.
        waiting = GaugeMetricFamily("vllm:num_requests_waiting", "Requests waiting (all variants).",
                                    labels=LABELS)
        waiting.add_metric([tel.model_name, "", ""], snap.waiting)
        yield waiting
        yield from _replica_gauges(tel.model_name, snap.replicas)
        loaded = GaugeMetricFamily("workbench:adapter_loaded", "1 for each adapter version served now.",
                                   labels=LABELS)
        for name in snap.loaded_adapters:
            loaded.add_metric([tel.model_name, name, versions.get(name, "")], 1)
        yield loaded
        yield GaugeMetricFamily("workbench:resident_memory_bytes", "Resident memory of the process.",
                                value=tel._rss())
        cuda = cuda_allocated()
        if cuda is not None:
            yield GaugeMetricFamily("workbench:cuda_memory_allocated_bytes",
                                    "CUDA memory allocated by tensors.", value=cuda)
        busy = cuda_utilization()
        if busy is not None:
            yield GaugeMetricFamily("workbench:cuda_utilization_percent",
                                    "GPU busy percentage (NVML).", value=busy)


def _count(keys: Iterable[str], versions: dict[str, str]) -> dict[tuple[str, str], int]:
    out: dict[tuple[str, str], int] = {}
    for key in keys:
        label = (BASE_LABEL, "") if key in (BASE_ADAPTER, None, "") else (key, versions.get(key, ""))
        out[label] = out.get(label, 0) + 1
    return out


def _replica_gauges(model: str, replicas: tuple[ReplicaState, ...]) -> Iterator[GaugeMetricFamily]:
    """Per replica behind a replicated backend: up, requests in flight, adapters loaded."""
    if not replicas:
        return
    families = {
        "up": GaugeMetricFamily("workbench:replica_up", "1 while the replica answers.",
                                labels=["model_name", "replica"]),
        "in_flight": GaugeMetricFamily("workbench:replica_requests_in_flight",
                                       "Requests queued or streaming on the replica.",
                                       labels=["model_name", "replica"]),
        "adapters": GaugeMetricFamily("workbench:replica_adapters_loaded",
                                      "Adapters the replica lists in /v1/models.",
                                      labels=["model_name", "replica"]),
    }
    for r in replicas:
        families["up"].add_metric([model, r.url], 1.0 if r.up else 0.0)
        families["in_flight"].add_metric([model, r.url], r.in_flight)
        families["adapters"].add_metric([model, r.url], len(r.adapters))
    yield from families.values()
