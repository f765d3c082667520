"""The ``workbench bench`` part of :mod:`workbench.devtools.gpu_check`: closed and open loop, half
precision and INT4, on the small default model (tiny in the dry run).

The command is invoked as a user would type it (in this process, so the model loads are the
only start-up cost). Options the installed ``workbench bench`` lacks are detected from its
click parameters: such runs are recorded as skipped with the reason, never run differently
and reported as if they had been.
"""
from __future__ import annotations

import gc
import json
import os
import time
from pathlib import Path
from typing import Any

from workbench.devtools.gpu_check_core import CheckFailed, CheckSkipped, Run, invoke_cli

DEMO_ADAPTER = "gpu-demo"


def bench_options() -> set[str]:
    """Every option string ``workbench bench`` accepts here."""
    from workbench.cli import main

    cmd = main.commands["bench"]
    return {opt for p in cmd.params for opt in (*p.opts, *p.secondary_opts)}


def bench_checks(run: Run) -> None:
    prep = run.check("bench_prepare", lambda: _prepare(run))
    variants = _variants(run)
    for variant, model in variants:
        for workload in ("closed-loop", "open-loop"):
            name = f"bench_{variant}_{workload}"
            if prep.status != "pass":
                run.check(name, lambda: _skip(f"bench_prepare did not pass: {prep.error}"))
            elif run.elapsed() > run.plan.budget_s:
                run.check(name, lambda: _skip(f"time budget of {run.plan.budget_s:.0f} s spent"))
            else:
                run.check(name, lambda v=variant, m=model, w=workload: _bench(run, v, m, w))
            _free()


def _skip(reason: str) -> dict[str, Any]:
    raise CheckSkipped(reason)


def _variants(run: Run) -> list[tuple[str, str | None]]:
    """(label, model) pairs; model None means 'made by bench_prepare' (the INT4 folder)."""
    plan = run.plan
    dtypes = list(plan.bench_dtypes)
    preset = _preset_dtype(plan.bench_model)
    if "--dtype" not in bench_options() and preset not in dtypes:
        dtypes.insert(0, preset)  # the dtype the command runs in today, next to the skipped ones
    out: list[tuple[str, str | None]] = [(d, plan.bench_model) for d in dtypes]
    if plan.bench_int4:
        out.append(("int4", None))
    return out


def _prepare(run: Run) -> dict[str, Any]:
    """A demo adapter for the bench model (and its INT4 twin), and the INT4 folder."""
    from workbench.adapters.demo import make_random_adapter
    from workbench.errors import WorkbenchError
    from workbench.models.catalog import load_model

    plan, tmp = run.plan, run.state["tmp"]
    try:
        loaded = load_model(plan.bench_model, device="cpu")
    except WorkbenchError as exc:  # e.g. no network for the first fetch of the model
        raise CheckSkipped(f"{plan.bench_model} could not be loaded here: {exc.message}") from exc
    root = tmp / "bench-adapters"
    make_random_adapter(loaded.model, root / DEMO_ADAPTER / "v1", base_model_id=loaded.model_id,
                        seed=7, rank=8, scale=0.5)
    run.state["bench_adapters"] = root
    details: dict[str, Any] = {"model": loaded.describe(), "options": sorted(bench_options())}
    del loaded
    if plan.bench_int4:
        # Named after the hub model so adapters made for it validate on the INT4 folder.
        dst = tmp / "bench-int4" / Path(_model_id(plan.bench_model)).name
        start = time.monotonic()
        invoke_cli(["quantize", plan.bench_model, str(dst), "--group-size", str(plan.bench_group_size),
                    "--calib-samples", str(plan.calib_samples), "--device", plan.device])
        details["int4_quantize_s"] = round(time.monotonic() - start, 1)
        run.state["bench_int4"] = dst
    return details


def _model_id(name: str) -> str:
    from workbench.models.catalog import resolve_preset

    return resolve_preset(name).model_id


def _bench(run: Run, variant: str, model: str | None, workload: str) -> dict[str, Any]:
    plan, opts = run.plan, bench_options()
    args = ["bench", "--model", model or str(run.state["bench_int4"]),
            "--concurrency", str(plan.bench_concurrency), "--requests", str(plan.bench_requests),
            "--new-tokens", str(plan.bench_new_tokens), "--adapters", DEMO_ADAPTER, "--json"]
    if workload == "open-loop":
        if not {"--workload", "--rate"} <= opts:
            raise CheckSkipped("workbench bench has no --workload open-loop --rate here")
        args += ["--workload", "open-loop", "--rate", str(plan.bench_rate)]
    if model is not None and variant != _preset_dtype(model):
        if "--dtype" not in opts:
            raise CheckSkipped(f"workbench bench has no --dtype option here; {model} would run "
                               f"in {_preset_dtype(model)}, not {variant}")
        args += ["--dtype", variant]
    if not plan.bench_baseline and "--skip-baseline" in opts:
        args.append("--skip-baseline")
    previous = os.environ.get("WORKBENCH_ADAPTERS")
    os.environ["WORKBENCH_ADAPTERS"] = str(run.state["bench_adapters"])
    try:
        stdout = invoke_cli(args)
    finally:
        if previous is None:
            os.environ.pop("WORKBENCH_ADAPTERS", None)
        else:
            os.environ["WORKBENCH_ADAPTERS"] = previous
    summary = _last_json(stdout)
    details = {"command": "workbench " + " ".join(args), "summary": summary,
               "report": [ln for ln in stdout.splitlines() if ln.strip() and not ln.startswith("{")]}
    if not summary:
        raise CheckFailed("workbench bench printed no JSON summary", details)
    return details


def _preset_dtype(model: str) -> str:
    from workbench.models.catalog import resolve_preset

    return resolve_preset(model).dtype


def _last_json(stdout: str) -> dict[str, Any] | None:
    for line in reversed(stdout.splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                value = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(value, dict):
                return value
    return None


def _free() -> None:
    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
