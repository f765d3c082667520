"""``workbench bench``: the engine's throughput and latency against its baselines, against a
peer server (``--peer-url``), and the sizing search (``--p95-target``)."""
from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

import click

from workbench.bench.units import parse_duration
from workbench.cli.backend_opts import BackendChoice, backend_choice, backend_options
from workbench.cli.precheck import DEFAULT_MODEL, adapter_refs, before_loading, check_refs
from workbench.errors import InputError
from workbench.telemetry.cost import PRICE_ENV


class Duration(click.ParamType):
    """Seconds, from "0.8s", "800ms", "2min" or a bare number of seconds."""

    name = "duration"

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> float:
        if isinstance(value, (int, float)):
            return float(value)
        try:
            return parse_duration(str(value))
        except InputError as exc:
            self.fail(exc.message, param, ctx)


def _progress(msg: str) -> None:
    click.echo(msg, err=True)


def _peer_options(fn: Callable) -> Callable:
    fn = click.option("--peer-dtype", default=None, metavar="DTYPE",
                      help="What the peer computes in, as it was started (vLLM's --dtype: float32, "
                      "bfloat16...); compared with the engine's.")(fn)
    fn = click.option("--peer-model", default=None,
                      help="The peer's base model id, when it lists several bases.")(fn)
    fn = click.option("--peer-api-key", envvar="WORKBENCH_PEER_API_KEY", default=None,
                      help="Bearer key of the peer (env WORKBENCH_PEER_API_KEY).")(fn)
    fn = click.option("--peer-url", default=None, metavar="URL",
                      help="A running OpenAI-compatible server (e.g. vLLM-CPU at "
                      "http://127.0.0.1:8420/v1) to run the same workloads on, after the engine; "
                      "the --adapters are loaded there as name@version.")(fn)
    return fn


def _sizing_options(fn: Callable) -> Callable:
    fn = click.option("--price-per-hour", envvar=PRICE_ENV, default=None,
                      type=click.FloatRange(min=0, min_open=True),
                      help=f"With --p95-target: price of one replica-hour, for the cost per 1,000 "
                      f"requests (env {PRICE_ENV}).")(fn)
    fn = click.option("--max-probes", default=6, show_default=True, type=click.IntRange(min=2, max=20),
                      help="With --p95-target: short open-loop runs the search may make.")(fn)
    fn = click.option("--probe-seconds", default=60.0, show_default=True,
                      type=click.FloatRange(min=0, min_open=True),
                      help="With --p95-target: each probe sends at least this many seconds of "
                      "arrivals, so a queue can build at fast rates.")(fn)
    fn = click.option("--p95-target", type=Duration(), default=None, metavar="DURATION",
                      help="Find the fastest open-loop rate whose end-to-end P95 stays under this "
                      "(0.8s, 800ms) and report it as requests/day per replica; --rate is where "
                      "the search starts, --requests the fewest requests of each probe.")(fn)
    return fn


@click.command("bench")
@click.option("--model", default=DEFAULT_MODEL, show_default=True, help="Model preset, hub id or folder.")
@click.option("--workload", type=click.Choice(["closed-loop", "open-loop", "both"]), default=None,
              help="Closed loop of clients, Poisson arrivals, or both. Default: closed-loop, "
              "both with --peer-url.")
@click.option("--concurrency", default=16, show_default=True, type=click.IntRange(min=1),
              help="Closed loop: requests in flight at once.")
@click.option("--requests", "n_requests", default=64, show_default=True, type=click.IntRange(min=1),
              help="Requests in total.")
@click.option("--new-tokens", default=64, show_default=True, type=click.IntRange(min=1),
              help="Closed loop: tokens generated per request.")
@click.option("--rate", default=0.5, show_default=True, type=click.FloatRange(min=0, min_open=True),
              help="Open loop: mean arrivals per second (near the static baseline's saturation on 2 CPU cores).")
@click.option("--max-batch", default=16, show_default=True, type=click.IntRange(min=1),
              help="Open loop: rows per step / per static batch.")
@click.option("--seed", default=0, show_default=True, help="Open loop: seed of the arrival trace.")
@click.option("--adapters", default="", help="Comma-separated adapter refs to mix with base rows.")
@click.option("--skip-baseline", is_flag=True,
              help="Closed loop: engine only. Open loop: no sequential pass (with --peer-url: no "
              "static pass either).")
@click.option("--decode-graphs", type=click.Choice(["auto", "off", "static", "cuda"]), default=None,
              help="Engine decode steps: auto (CUDA graphs on a GPU), off, static (bucketed, eager) "
              "or cuda (captured). Default: WORKBENCH_DECODE_GRAPHS, else auto.")
@_peer_options
@_sizing_options
@click.option("--json", "as_json", is_flag=True, help="End with one JSON line of the results.")
@backend_options
def bench_cmd(**opts: object) -> None:
    """Throughput and latency of the engine against static batching and one-at-a-time generate,
    against a peer server, or the requests/day one replica takes under a latency target.

    Example: workbench bench --concurrency 16 --requests 64 --new-tokens 64 --adapters demo-random --json

    Example: workbench bench --workload open-loop --rate 0.5 --requests 64 --adapters demo-random --json

    Example: workbench bench --adapters cs-support --peer-url http://127.0.0.1:8420/v1 --peer-dtype float32 --json

    Example: workbench bench --p95-target 0.8s --price-per-hour 2.5 --requests 32 --json
    """
    o = BenchOptions(**opts)  # type: ignore[arg-type]  (click gives every option)
    choice = backend_choice(o.backend, o.base_url, o.api_key)
    refs = adapter_refs(a.strip() for a in o.adapters.split(","))
    workload = _workload(o, choice)
    check_refs(refs, choice.remote)
    before_loading()
    if o.p95_target is not None:
        summary = _sizing(o, refs, choice)
    elif o.peer_url:
        summary = _peer(o, refs, workload)
    else:
        summary = _plain(o, refs, workload, choice)
    if o.as_json:
        click.echo(json.dumps(summary))


@dataclass(frozen=True)
class BenchOptions:
    """The command's options by name, shared by the helpers below."""

    model: str
    workload: str | None
    concurrency: int
    n_requests: int
    new_tokens: int
    rate: float
    max_batch: int
    seed: int
    adapters: str
    skip_baseline: bool
    decode_graphs: str | None
    peer_url: str | None
    peer_api_key: str | None
    peer_model: str | None
    peer_dtype: str | None
    p95_target: float | None
    max_probes: int
    probe_seconds: float
    price_per_hour: float | None
    as_json: bool
    backend: str
    base_url: tuple[str, ...]
    api_key: str | None


def _workload(o: BenchOptions, choice: BackendChoice) -> str:
    """The workload(s) to run, after refusing combinations that cannot work."""
    if o.p95_target is not None:
        if o.peer_url:
            raise click.UsageError("--p95-target sizes one backend; run it without --peer-url "
                                   "(size the peer with --backend openai --base-url URL).")
        if o.workload not in (None, "open-loop"):
            raise click.UsageError("--p95-target runs the open-loop workload only.")
        return "open-loop"
    if o.peer_url:
        if choice.remote:
            raise click.UsageError("--peer-url compares this process's engine with a server; leave "
                                   "out --backend openai.")
        return o.workload or "both"
    if choice.remote and o.workload in ("open-loop", "both"):
        raise click.UsageError("--backend openai runs the closed-loop workload only.")
    return o.workload or "closed-loop"


def _closed(o: BenchOptions, refs: list[str], baseline: bool):
    from workbench.bench.closed_loop import BenchSettings

    return BenchSettings(o.model, o.concurrency, o.n_requests, o.new_tokens, refs, baseline,
                         o.decode_graphs)


def _open(o: BenchOptions, refs: list[str], static: bool = True):
    from workbench.bench.open_loop import OpenLoopSettings

    return OpenLoopSettings(o.model, o.rate, o.n_requests, refs, o.max_batch, o.seed,
                            sequential=not o.skip_baseline, static=static,
                            decode_graphs=o.decode_graphs)


def _plain(o: BenchOptions, refs: list[str], workload: str, choice: BackendChoice) -> dict:
    from workbench.bench.closed_loop import print_report, run_bench
    from workbench.bench.open_loop import print_open_report, run_open_loop, with_open_loop

    summary: dict = {}
    if workload in ("closed-loop", "both"):
        # The sequential baseline needs the model in this process.
        report = run_bench(_closed(o, refs, not o.skip_baseline and not choice.remote),
                           progress=_progress, start=choice.start)
        print_report(report, click.echo)
        summary.update(report.summary())
    if workload in ("open-loop", "both"):
        opened = run_open_loop(_open(o, refs), progress=_progress)
        print_open_report(opened, click.echo)
        summary = with_open_loop(summary, opened.summary())
    return summary


def _peer(o: BenchOptions, refs: list[str], workload: str) -> dict:
    from workbench.bench.peer import Peer, print_peer_report, run_peer_bench

    peer = Peer(o.peer_url, o.peer_api_key, o.peer_model, o.peer_dtype)
    closed = _closed(o, refs, not o.skip_baseline) if workload in ("closed-loop", "both") else None
    opened = _open(o, refs, not o.skip_baseline) if workload in ("open-loop", "both") else None
    report = run_peer_bench(peer, closed, opened, progress=_progress)
    print_peer_report(report, click.echo)
    return report.summary()


def _sizing(o: BenchOptions, refs: list[str], choice: BackendChoice) -> dict:
    from workbench.bench.sizing import print_sizing, run_sizing

    settings = _open(o, refs)
    sizing = run_sizing(settings, o.p95_target, o.max_probes, o.price_per_hour, progress=_progress,
                        start=choice.start if choice.remote else None, probe_seconds=o.probe_seconds)
    print_sizing(sizing, settings, click.echo)
    return sizing.summary()


COMMANDS = [bench_cmd]
