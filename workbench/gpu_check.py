"""One prepared check of the CUDA path: ``python -m workbench.gpu_check [--dry-run|--device cpu]``.

The production target (GLM-4 INT4 AWQ on an NVIDIA GPU) runs code that a CPU never reaches:
gptqmodel's CUDA AWQ kernels, mixed-adapter batches and prefix reuse on them, LoRA training on
CUDA. GPU time is scarce, so one run of a few minutes on tiny and small models checks it all:

1. ``quantize``: a tiny GLM through ``workbench quantize --device cuda``, loaded back in plain
   transformers; which gptqmodel kernel class serves it; logits close to the float model's.
2. ``engine``: the engine on that INT4 base with two adapters. Mixed-adapter rows match each
   row alone, reused system-prompt keys/values give the tokens of a full prefill, and a
   hot-swap between steps keeps the request in flight on its version and serves the new one
   after. Token comparisons follow the tests' tolerance rule (``workbench.devtools.greedy_match``).
3. ``train``: one LoRA step on the float base on the device; the adapter is validated and
   served on the INT4 base.
4. ``bench``: ``workbench bench`` closed and open loop on SmolLM2-135M, half precision and
   INT4 (see :mod:`workbench.gpu_check_bench`).

The JSON summary is rewritten after every check, so a run cut short still leaves what it saw;
it goes to ``--out``, else ``$OUT/gpu_check.json`` when ``$OUT`` is set, else under
``WORKBENCH_HOME``; its path is printed. Exit status: 0 all checks passed (skips are listed),
1 a check failed, 2 the device is missing. ``--dry-run`` runs the same code on the CPU with
tiny counts (the test suite does, so the script cannot rot between GPU runs).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from workbench.quiet import quiet_imports

quiet_imports()

# The tests' tolerance rule, from the package so the check needs no test tree.
from workbench.devtools.greedy_match import logit_tolerance as tolerance  # noqa: E402,F401
from workbench.devtools.greedy_match import prompt_ids  # noqa: E402,F401
from workbench.devtools.greedy_match import teacher_forced_logits as forced_logits  # noqa: E402,F401

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
    # Bench runs that would start after this many seconds of the whole run are skipped.
    budget_s: float = 330.0


PLANS: dict[str, CheckPlan] = {
    "gpu": CheckPlan("cuda"),
    "cpu": CheckPlan("cpu", bench_dtypes=("float32",), budget_s=1800.0),
    # The test suite's run: the same code paths, tiny model, tiny counts.
    "dry-run": CheckPlan("cpu", new_tokens=6, swap_tokens=16, calib_samples=16,
                         bench_model="tiny-glm", bench_dtypes=("float32",), bench_int4=False,
                         bench_concurrency=2, bench_requests=4, bench_new_tokens=4,
                         bench_rate=20.0, bench_baseline=False, budget_s=600.0),
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


def environment(device: str) -> dict[str, Any]:
    """Versions, the device's name and memory, and what gptqmodel's kernel builds need."""
    import shutil
    from importlib.metadata import PackageNotFoundError, version

    import torch

    def ver(name: str) -> str | None:
        try:
            return version(name)
        except PackageNotFoundError:
            return None

    env: dict[str, Any] = {
        "python": platform.python_version(), "machine": platform.machine(),
        "cpu_count": os.cpu_count(), "torch": torch.__version__,
        "torch_matches_lock": torch.__version__.split("+")[0] == LOCKED_TORCH,
        "torch_cuda": torch.version.cuda, "cuda_available": torch.cuda.is_available(),
        "nvcc": shutil.which("nvcc"),
        **{name: ver(name) for name in ("transformers", "peft", "gptqmodel", "accelerate")},
        "device": device,
    }
    if device.startswith("cuda") and torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        free, total = torch.cuda.mem_get_info()
        env.update(gpu_name=props.name, gpu_capability=f"{props.major}.{props.minor}",
                   gpu_memory_gib=round(total / 2**30, 1), gpu_free_gib=round(free / 2**30, 1),
                   gpu_count=torch.cuda.device_count())
    return env


def prepare_kernel_builds(device: str) -> None:
    """gptqmodel compiles its CUDA kernels on first use; build them for this GPU only and
    with every core, which saves minutes, unless the caller already chose."""
    import torch

    if not (device.startswith("cuda") and torch.cuda.is_available()):
        return
    major, minor = torch.cuda.get_device_capability(0)
    os.environ.setdefault("TORCH_CUDA_ARCH_LIST", f"{major}.{minor}")
    os.environ.setdefault("MAX_JOBS", str(os.cpu_count() or 4))


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

def default_out() -> Path:
    if os.environ.get("OUT"):
        return Path(os.environ["OUT"]) / "gpu_check.json"
    from workbench.config import workbench_home

    return workbench_home() / f"gpu_check-{time.strftime('%Y%m%d-%H%M%S')}.json"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="python -m workbench.gpu_check",
        description="One prepared check of the CUDA path: AWQ INT4 kernels, the engine with mixed "
                    "adapters, prefix reuse and hot-swap on them, a LoRA training step, and "
                    "`workbench bench`. Writes one JSON summary; exit 1 if a check fails.")
    ap.add_argument("--dry-run", action="store_true", help="CPU, tiny model, tiny counts (the test suite's run).")
    ap.add_argument("--device", choices=["cuda", "cpu"], default="cuda", help="Where to run the full plan.")
    ap.add_argument("--out", type=Path, default=None, help="JSON summary path (default: $OUT/gpu_check.json).")
    ap.add_argument("--skip-bench", action="store_true", help="Only the correctness checks.")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    from workbench.gpu_check_bench import bench_checks
    from workbench.gpu_check_parts import engine_checks, quantize_check, train_check

    args = parse_args(argv)
    plan_name = "dry-run" if args.dry_run else ("gpu" if args.device == "cuda" else "cpu")
    run = Run(plan_name, args.out or default_out())
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as tmp:
        run.state["tmp"] = Path(tmp)
        env = run.check("environment", lambda: environment(run.plan.device))
        run.environment = env.details
        if run.plan.device == "cuda" and not env.details.get("cuda_available"):
            run.results[-1].status, run.results[-1].error = "fail", "CUDA is not available here."
            run.write()
            print(f"No CUDA device. Summary: {run.out}")
            return 2
        prepare_kernel_builds(run.plan.device)
        quantized = run.check("quantize", lambda: quantize_check(run)).status == "pass"
        train_check(run)
        if quantized:
            engine_checks(run)
        if not args.skip_bench:
            bench_checks(run)
        run.state.clear()
    print_table(run)
    return 0 if run.ok else 1


def print_table(run: Run) -> None:
    for r in run.results:
        mark = {"pass": "ok  ", "fail": "FAIL", "skip": "skip"}[r.status]
        print(f"{mark} {r.name:<28} {r.seconds:>7.1f} s  {r.error or ''}")
    print(f"{'all checks passed' if run.ok else 'FAILED: ' + ', '.join(run.summary()['failed'])}"
          f" in {run.elapsed():.0f} s. Summary: {run.out}")


if __name__ == "__main__":
    # Through the package module, so the check modules and this entry point share one copy of
    # the classes above (``python -m`` would otherwise load this file twice).
    from workbench.gpu_check import main as _main

    sys.exit(_main())
