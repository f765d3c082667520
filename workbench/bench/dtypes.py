"""Which number format each side of a comparison computes in, so a benchmark compares like with
like (an fp32 engine against a bf16 server measures the format, not the server)."""
from __future__ import annotations

from collections.abc import Mapping

from workbench.service.workbench import Workbench

UNKNOWN = "unknown"
# The spellings torch, vLLM's --dtype and people use, to one name each.
ALIASES = {"float": "float32", "fp32": "float32", "f32": "float32", "torch.float32": "float32",
           "bf16": "bfloat16", "torch.bfloat16": "bfloat16",
           "half": "float16", "fp16": "float16", "f16": "float16", "torch.float16": "float16"}


def normalize_dtype(name: str | None) -> str:
    """One spelling per format ("bf16", "torch.bfloat16" -> "bfloat16"); "unknown" for none."""
    if not name:
        return UNKNOWN
    key = str(name).strip().lower()
    return ALIASES.get(key, key.removeprefix("torch."))


def described_dtype(described: object) -> str | None:
    """The first ``dtype`` a backend's ``describe()`` gives, however deep it nests it."""
    if not isinstance(described, Mapping):
        return None
    if described.get("dtype"):
        return str(described["dtype"])
    for value in described.values():
        found = described_dtype(value)
        if found:
            return found
    return None


def engine_dtype(wb: Workbench) -> str:
    """What ``wb``'s backend computes in: what its ``describe()`` says, else the dtype of the
    base weights it holds, else "unknown" (a server that does not say)."""
    said = described_dtype(wb.engine.describe())
    if said:
        return normalize_dtype(said)
    weights = wb.engine.weights()
    param = next(iter(weights.model.parameters()), None) if weights is not None else None
    return normalize_dtype(str(param.dtype)) if param is not None else UNKNOWN


def dtype_warning(engine: str, peer: str) -> str | None:
    """What to tell the reader when the two sides may not compute in the same format."""
    if UNKNOWN in (engine, peer):
        side = "the peer" if peer == UNKNOWN else "the engine"
        return (f"cannot tell what {side} computes in (engine {engine}, peer {peer}); pass "
                "--peer-dtype (the dtype the server was started with) so the comparison is checked.")
    if engine != peer:
        return (f"the engine runs {engine} but the peer runs {peer}: the ratios compare number "
                f"formats as much as servers; start the peer with --dtype {engine} (or run the "
                f"engine in {peer}).")
    return None
