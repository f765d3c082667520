"""What the GPU check's parts share: the plan, the results and their JSON summary, the
tolerance rule, and a way to call the CLI in-process. ``gpu_check`` (the entry point),
``gpu_check_parts`` and ``gpu_check_bench`` all import from here, never from each other.
"""
from __future__ import annotations

import json
import os
import resource
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from workbench.console.quiet import quiet_imports

quiet_imports()

LOCKED_TORCH = "2.13.0"
TINY_SEED = 3
QUESTIONS = ["Where is my order? It has not arrived.", "我的订单在哪里？我想退货。",
             "¿Puedo devolverlo después de 20 días?", "Où est ma commande ?"]
SYSTEM = ("You answer for an online store. Returns: 30 days from delivery; refunds within 10 "
          "days of receipt. Answer in the customer's language.")


@dataclass(frozen=True)
class CheckPlan:
    """What one run checks and how big; presets in ``PLANS``."""

    # "cuda" or "cpu".
    device: str
    # Tiny GLM width (AWQ needs widths in multiples of 64) and its AWQ group size.
    tiny_hidden: int = 128
    group_size: int = 128
    calib_samples: int = 32
    # Tokens each engine row generates; the hot-swapped request generates more.
    new_tokens: int = 12
    swap_tokens: int = 48
    train_steps: int = 1
    # Bench: model, float dtypes (INT4 is added by quantizing it), sizes.
    bench_model: str = "smollm2-135m"
    bench_dtypes: tuple[str, ...] = ("float16", "bfloat16")
    bench_int4: bool = True
    bench_group_size: int = 64  # SmolLM2's hidden size 576 is a multiple of 64, not of 128
    bench_concurrency: int = 16
    bench_requests: int = 32
    bench_new_tokens: int = 64
    bench_rate: float = 8.0
    bench_baseline: bool = True
    # Decode capture (``gpu_check_capture``): batch sizes, (short, long) new tokens, repeats.
    capture_batches: tuple[int, ...] = (1, 16)
    capture_tokens: tuple[int, int] = (16, 80)
    capture_repeats: int = 3
    # Bench runs that would start after this many seconds of the whole run are skipped.
    budget_s: float = 330.0


PLANS: dict[str, CheckPlan] = {
    "gpu": CheckPlan("cuda"),
    "cpu": CheckPlan("cpu", bench_dtypes=("float32",), budget_s=1800.0),
    # The test suite's run: the same code paths, tiny model, tiny counts.
    "dry-run": CheckPlan("cpu", new_tokens=6, swap_tokens=16, calib_samples=16,
                         bench_model="tiny-glm", bench_dtypes=("float32",), bench_int4=False,
                         bench_concurrency=2, bench_requests=4, bench_new_tokens=4,
                         bench_rate=20.0, bench_baseline=False, capture_batches=(1, 2),
                         capture_tokens=(2, 6), capture_repeats=1, budget_s=600.0),
}


@dataclass
class CheckResult:
    """One check's outcome, as it lands in the JSON summary."""

    name: str
    # "pass", "fail" or "skip".
    status: str
    seconds: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


class CheckFailed(Exception):
    """A check ran and saw something wrong; ``details`` says what it measured."""

    def __init__(self, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.details = details or {}


class CheckSkipped(Exception):
    """A check could not run here for a reason outside the code under test."""


# --------------------------------------------------------------------------- tolerance rule

def greedy_gap(logits: Any, tokens: Sequence[int]) -> float:
    """Largest distance of a chosen token below its step's best logit (0: exactly greedy).

    A row is near-greedy under its own prompt and adapter when this is at most ``2 * tol``; a
    wrong adapter, mask or position moves logits by whole units.
    """
    return max(float(logits[s].max() - logits[s, t]) for s, t in enumerate(tokens))


def parted_at_confident_step(ref: Sequence[int], got: Sequence[int], ref_logits: Any,
                             tol: float) -> int | None:
    """The first step where ``got`` leaves ``ref`` although ``ref``'s top-2 margin there is
    above ``2 * tol``; None when they agree or part only at a near-tie."""
    for s in range(min(len(ref), len(got))):
        if ref[s] != got[s]:
            top2 = ref_logits[s].topk(2).values
            return s if float(top2[0] - top2[1]) > 2 * tol else None
    return None


# --------------------------------------------------------------------------- running checks

class Run:
    """Runs checks in order, times them, and rewrites the summary after each."""

    def __init__(self, plan_name: str, out: Path) -> None:
        self.plan_name, self.plan, self.out = plan_name, PLANS[plan_name], out
        self.started = time.time()
        self.results: list[CheckResult] = []
        self.environment: dict[str, Any] = {}
        self.state: dict[str, Any] = {}  # what later checks reuse (folders, models)

    def elapsed(self) -> float:
        return time.time() - self.started

    def check(self, name: str, fn: Callable[[], dict[str, Any]]) -> CheckResult:
        print(f"[gpu-check] {name} ...", file=sys.stderr, flush=True)
        _reset_peak_memory(self.plan.device)
        start = time.monotonic()
        try:
            result = CheckResult(name, "pass", details=fn() or {})
        except CheckSkipped as exc:
            result = CheckResult(name, "skip", error=str(exc))
        except CheckFailed as exc:
            result = CheckResult(name, "fail", details=exc.details, error=str(exc))
        except Exception as exc:  # any crash is a failed check, never a lost summary
            result = CheckResult(name, "fail", error=f"{type(exc).__name__}: {exc}",
                                 details={"traceback": traceback.format_exc()[-4000:]})
        result.seconds = round(time.monotonic() - start, 2)
        peak = _peak_memory_mib(self.plan.device)
        if peak is not None:
            result.details["gpu_peak_mib"] = peak
        self.results.append(result)
        print(f"[gpu-check] {name}: {result.status} ({result.seconds:.1f} s)"
              + (f": {result.error}" if result.error else ""), file=sys.stderr, flush=True)
        self.write()
        return result

    @property
    def ok(self) -> bool:
        return bool(self.results) and all(r.status != "fail" for r in self.results)

    def summary(self) -> dict[str, Any]:
        return {
            "plan": self.plan_name, "settings": asdict(self.plan),
            "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.started)),
            "ok": self.ok, "total_s": round(self.elapsed(), 1),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "environment": self.environment,
            "failed": [r.name for r in self.results if r.status == "fail"],
            "skipped": [r.name for r in self.results if r.status == "skip"],
            "checks": [asdict(r) for r in self.results],
        }

    def write(self) -> None:
        self.out.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.out.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.summary(), indent=2, ensure_ascii=False, default=str))
        os.replace(tmp, self.out)


def _reset_peak_memory(device: str) -> None:
    import torch

    if device.startswith("cuda") and torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()


def _peak_memory_mib(device: str) -> float | None:
    import torch

    if device.startswith("cuda") and torch.cuda.is_available():
        return round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return None


def invoke_cli(args: list[str]) -> str:
    """Run one ``workbench`` command in this process; returns what it printed to stdout."""
    import contextlib
    import io

    from workbench.cli import main

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        try:
            main.main(args=args, prog_name="workbench", standalone_mode=False)
        except SystemExit as exc:  # WorkbenchError: the group printed the message and exits
            if exc.code:
                raise CheckFailed(f"workbench {args[0]} exited with {exc.code}",
                                  {"stdout": buf.getvalue()[-2000:]}) from exc
    return buf.getvalue()


# --------------------------------------------------------------------------- main

