"""One prepared check of the CUDA path: ``python -m workbench.devtools.gpu_check [--dry-run|--device cpu]``.

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
4. ``decode_capture``: the engine's decode step on SmolLM2-135M with two adapters, per
   batch size, eager through PEFT against bucketed and captured as CUDA graphs, with the
   tokens judged by the tolerance rule (see :mod:`workbench.devtools.gpu_check_capture`). The engine
   checks above run with the engine's default, which captures on CUDA too.
5. ``bench``: ``workbench bench`` closed and open loop on SmolLM2-135M, half precision and
   INT4 (see :mod:`workbench.devtools.gpu_check_bench`).

The JSON summary is rewritten after every check, so a run cut short still leaves what it saw;
it goes to ``--out``, else ``$OUT/gpu_check.json`` when ``$OUT`` is set, else under
``WORKBENCH_HOME``; its path is printed. Exit status: 0 all checks passed (skips are listed),
1 a check failed, 2 the device is missing. ``--dry-run`` runs the same code on the CPU with
tiny counts (the test suite does, so the script cannot rot between GPU runs).
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from workbench.console.quiet import quiet_imports

quiet_imports()

# Re-exported: the check's types and rule, for callers of this entry point.
from workbench.devtools.gpu_check_core import (CheckFailed, CheckResult, CheckSkipped,  # noqa: E402,F401
                                      Run, greedy_gap, parted_at_confident_step)
from workbench.devtools.gpu_check_core import LOCKED_TORCH  # noqa: E402

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


def default_out() -> Path:
    if os.environ.get("OUT"):
        return Path(os.environ["OUT"]) / "gpu_check.json"
    from workbench.config import workbench_home

    return workbench_home() / f"gpu_check-{time.strftime('%Y%m%d-%H%M%S')}.json"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="python -m workbench.devtools.gpu_check",
        description="One prepared check of the CUDA path: AWQ INT4 kernels, the engine with mixed "
                    "adapters, prefix reuse and hot-swap on them, a LoRA training step, and "
                    "`workbench bench`. Writes one JSON summary; exit 1 if a check fails.")
    ap.add_argument("--dry-run", action="store_true", help="CPU, tiny model, tiny counts (the test suite's run).")
    ap.add_argument("--device", choices=["cuda", "cpu"], default="cuda", help="Where to run the full plan.")
    ap.add_argument("--out", type=Path, default=None, help="JSON summary path (default: $OUT/gpu_check.json).")
    ap.add_argument("--skip-bench", action="store_true",
                    help="Only the correctness checks (no decode capture timing, no bench).")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    from workbench.devtools.gpu_check_bench import bench_checks
    from workbench.devtools.gpu_check_capture import capture_check
    from workbench.devtools.gpu_check_parts import engine_checks, quantize_check, train_check

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
            capture_check(run)
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
    sys.exit(main())
