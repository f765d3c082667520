"""Check an adapter folder against the loaded base before anything changes.

Every check reads files and module attributes only: nothing is loaded into the engine and
the registry is not touched, so a bad adapter is refused with a specific
:class:`AdapterError` while serving goes on. The checks, in order: the folder and its
files exist; ``adapter_config.json`` is a LoRA config whose every setting is on the
whitelist of :mod:`workbench.adapters.config_rules` (nothing that writes into the shared
base, rank under the cap, safe regular expressions) and names this base; the safetensors
file is under the size cap, opens and holds only LoRA matrices; each matrix pair fits its
target module's in/out features with a rank under the cap; every configured target module
exists in the base.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from safetensors import SafetensorError, safe_open
from torch import nn

from workbench.adapters.config_rules import AdapterLimits, check_config
from workbench.adapters.registry import CARD_FILE, CONFIG_FILE, WEIGHTS_FILE
from workbench.errors import AdapterError
from workbench.models.loaded import LoadedModel

# peft saves LoRA keys as base_model.model.<module path>.lora_<A|B>.weight
KEY = re.compile(r"^base_model\.model\.(?P<module>.+)\.(?P<kind>lora_A|lora_B|lora_embedding_A|"
                 r"lora_embedding_B)(?:\.weight)?$")
FLOAT_DTYPES = {"F16", "BF16", "F32", "F64"}
# Why some LoRA kinds are refused: the engine stacks every adapter's A and B per linear layer
# and picks each row's by a one-hot mask (``engine/stacked_lora.py``), as vLLM batches LoRA.
UNSTACKABLE = "stacked with the other adapters for mixed batches (only LoRA on linear layers is served)"


@dataclass(frozen=True)
class AdapterReport:
    """What validation learned about an adapter that passed."""

    # Base model id the adapter names (config or card).
    base_model: str
    # LoRA rank (r) from the config.
    rank: int
    # Base modules the adapter changes (full dotted paths), sorted.
    modules: tuple[str, ...]
    # Number of tensors in the safetensors file.
    tensors: int
    # Total LoRA parameters.
    parameters: int
    # Bytes of the folder's files.
    size_bytes: int


def validate_adapter(path: str | Path, loaded: LoadedModel,
                     limits: AdapterLimits | None = None) -> AdapterReport:
    """Raise AdapterError naming the first problem, or describe a servable adapter."""
    limits = limits or AdapterLimits()
    folder = Path(path)
    try:
        found = folder.is_dir()
    except OSError as exc:  # a name too long for the filesystem, and the like
        raise AdapterError(f"Adapter folder {str(folder)[:80]} cannot be read: "
                           f"{exc.strerror or exc}.") from exc
    if not found:
        raise AdapterError(f"Adapter folder {folder} does not exist.")
    config = read_config(folder, limits)
    base_id = _check_base_id(folder, config, loaded)
    shapes = read_shapes(folder, limits)
    modules = _check_shapes(shapes, loaded.model, config, limits)
    _check_targets(config, loaded.model)
    size = sum(f.stat().st_size for f in folder.iterdir() if f.is_file())
    params = sum(_numel(s) for _, s in shapes.values())
    return AdapterReport(base_id, int(config["r"]), tuple(sorted(modules)), len(shapes), params, size)


def read_config(folder: Path, limits: AdapterLimits | None = None) -> dict:
    """adapter_config.json, checked to be a plain LoRA config the engine can batch."""
    cfg_file = folder / CONFIG_FILE
    if not cfg_file.is_file():
        raise AdapterError(f"{folder.name}: {CONFIG_FILE} is missing; an adapter folder needs "
                           f"{CONFIG_FILE} and {WEIGHTS_FILE}.")
    try:
        config = json.loads(cfg_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise AdapterError(f"{folder.name}: {CONFIG_FILE} is not valid JSON ({exc}).") from exc
    if not isinstance(config, dict):
        raise AdapterError(f"{folder.name}: {CONFIG_FILE} must hold a JSON object.")
    if str(config.get("peft_type", "")).upper() != "LORA":
        raise AdapterError(f"{folder.name}: only LoRA adapters are supported, this one is "
                           f"{config.get('peft_type')!r}.")
    check_config(config, folder.name, limits or AdapterLimits())
    return config


def _card_base(folder: Path) -> str:
    try:
        return str(json.loads((folder / CARD_FILE).read_text()).get("base_model") or "")
    except (OSError, ValueError, AttributeError):
        return ""


def same_model(a: str, b: str) -> bool:
    """Ids match exactly, or by their last path part (a local copy of the same hub model)."""
    a, b = a.strip().rstrip("/"), b.strip().rstrip("/")
    return bool(a and b) and (a == b or a.rsplit("/", 1)[-1].lower() == b.rsplit("/", 1)[-1].lower())


def _check_base_id(folder: Path, config: dict, loaded: LoadedModel) -> str:
    named = str(config.get("base_model_name_or_path") or "") or _card_base(folder)
    if not named:
        raise AdapterError(f"{folder.name}: the adapter does not say which base model it was "
                           "trained for (base_model_name_or_path in adapter_config.json).")
    ours = {loaded.model_id, loaded.name, str(getattr(loaded.model.config, "_name_or_path", ""))}
    if not any(same_model(named, o) for o in ours if o):
        raise AdapterError(f"{folder.name}: trained for base '{named}', but the loaded base is "
                           f"'{loaded.model_id}'. Load it with --model {named} or pick another adapter.")
    return named


def read_shapes(folder: Path, limits: AdapterLimits | None = None) -> dict[str, tuple[str, list[int]]]:
    """Key -> (dtype, shape) from the safetensors header, without reading the tensors."""
    limits = limits or AdapterLimits()
    weights = folder / WEIGHTS_FILE
    if not weights.is_file():
        raise AdapterError(f"{folder.name}: {WEIGHTS_FILE} is missing (only safetensors weights "
                           "are accepted, never pickled .bin files).")
    if weights.stat().st_size > limits.max_weights_bytes:
        raise AdapterError(f"{folder.name}: {WEIGHTS_FILE} is {weights.stat().st_size >> 20} MiB, "
                           f"above the {limits.max_weights_bytes >> 20} MiB cap.")
    try:
        with safe_open(str(weights), framework="pt") as fh:
            shapes = {k: (fh.get_slice(k).get_dtype(), list(fh.get_slice(k).get_shape()))
                      for k in fh.keys()}
    except (SafetensorError, OSError, ValueError) as exc:
        raise AdapterError(f"{folder.name}: {WEIGHTS_FILE} is corrupt or truncated ({exc}).") from exc
    if not shapes:
        raise AdapterError(f"{folder.name}: {WEIGHTS_FILE} holds no tensors.")
    if len(shapes) > limits.max_tensors:
        raise AdapterError(f"{folder.name}: {WEIGHTS_FILE} holds {len(shapes)} tensors, at most "
                           f"{limits.max_tensors} are accepted.")
    return shapes


def _module(model: nn.Module, path: str) -> nn.Module | None:
    try:
        mod = model.get_submodule(path)
    except AttributeError:
        return None
    # A module that already carries another adapter's LoRA wraps the original layer.
    return getattr(mod, "base_layer", mod)


def _in_out(mod: nn.Module) -> tuple[int, int] | None:
    if isinstance(mod, nn.Embedding):
        return mod.num_embeddings, mod.embedding_dim
    fin, fout = getattr(mod, "in_features", None), getattr(mod, "out_features", None)
    if isinstance(fin, int) and isinstance(fout, int):
        return fin, fout
    return None


def _check_shapes(shapes: dict[str, tuple[str, list[int]]], model: nn.Module, config: dict,
                  limits: AdapterLimits) -> set[str]:
    _refuse_embedding_lora(shapes)
    pairs: dict[str, dict[str, list[int]]] = {}
    for key, (dtype, shape) in shapes.items():
        m = KEY.match(key)
        if m is None:
            raise AdapterError(f"Unexpected tensor '{key}': only LoRA matrices are accepted.")
        if dtype not in FLOAT_DTYPES or len(shape) != 2:
            raise AdapterError(f"Tensor '{key}' must be a 2-D float matrix, not {dtype} {shape}.")
        pairs.setdefault(m["module"], {})[m["kind"][-1]] = shape
    for path, ab in pairs.items():
        _check_pair(path, ab, model, config)
        if ab["A"][0] > limits.max_rank:
            raise AdapterError(f"Module '{path}' has LoRA rank {ab['A'][0]}, above the served "
                               f"maximum of {limits.max_rank}.")
    return set(pairs)


def _refuse_embedding_lora(shapes: dict[str, tuple[str, list[int]]]) -> None:
    """Named before other tensor problems: peft saves such an adapter with a copy of the
    embedding matrix too, which would otherwise be refused as a stray tensor."""
    for key in shapes:
        m = KEY.match(key)
        if m is not None and m["kind"].startswith("lora_embedding"):
            raise AdapterError(f"'{m['module']}' carries LoRA on an embedding, which cannot be "
                               f"{UNSTACKABLE}; retrain with LoRA on linear layers only.")


def _check_pair(path: str, ab: dict[str, list[int]], model: nn.Module, config: dict) -> None:
    if set(ab) != {"A", "B"}:
        raise AdapterError(f"Module '{path}' has only lora_{''.join(ab)}; LoRA needs both A and B.")
    mod = _module(model, path)
    if mod is None:
        raise AdapterError(f"The adapter targets '{path}', which this base model does not have "
                           "(was it trained for another architecture?).")
    dims = _in_out(mod)
    if isinstance(mod, nn.Embedding):
        raise AdapterError(f"The adapter targets the embedding '{path}': LoRA on an embedding "
                           f"cannot be {UNSTACKABLE}.")
    if dims is None:
        raise AdapterError(f"Module '{path}' ({type(mod).__name__}) cannot carry a LoRA adapter.")
    fin, fout = dims
    # Linear: A [r, in], B [out, r]; Embedding: A [r, vocab], B [dim, r] (same rule).
    a, b = ab["A"], ab["B"]
    rank = a[0]
    if a != [rank, fin] or b != [fout, rank]:
        raise AdapterError(
            f"Shape mismatch at '{path}': the base layer is {fin} -> {fout}, so LoRA A must be "
            f"[r, {fin}] and B [{fout}, r], but the file has A {a} and B {b}. The adapter was "
            "trained for a different base model size.")
    # With a rank_pattern, ranks legitimately differ per module; peft checks those on load.
    if not config.get("rank_pattern") and rank != config["r"]:
        raise AdapterError(f"'{path}' has rank {rank} but {CONFIG_FILE} says r={config['r']}.")


def _check_targets(config: dict, model: nn.Module) -> None:
    targets = config.get("target_modules")
    names = [n for n, _ in model.named_modules() if n]
    if isinstance(targets, str):
        if targets != "all-linear" and not any(re.fullmatch(targets, n) for n in names):
            raise AdapterError(f"target_modules pattern {targets!r} matches no module of the base.")
        return
    missing = [t for t in targets or [] if not any(n == t or n.endswith("." + t) for n in names)]
    if missing:
        raise AdapterError(f"Target modules not found in the base model: {', '.join(sorted(missing))}.")


def _numel(shape: list[int]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n
