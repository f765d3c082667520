"""Where things live, and the engine's settings as one dataclass with named presets."""
from __future__ import annotations

import dataclasses
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from workbench.errors import UnknownNameError

REPO_ROOT = Path(__file__).resolve().parent.parent
# Product data, one home: phrase tables, the policy pack, training dialogs, eval suites.
DATA_ROOT = Path(__file__).resolve().parent / "data"


def workbench_home() -> Path:
    """Cache and database folder; ``WORKBENCH_HOME`` overrides the default."""
    env = os.environ.get("WORKBENCH_HOME")
    home = Path(env).expanduser() if env else Path.home() / ".cache" / "glm-support-workbench"
    home.mkdir(parents=True, exist_ok=True)
    return home


def db_path() -> Path:
    """The workbench database: the chat log and the eval runs store share this one SQLite file."""
    return workbench_home() / "workbench.sqlite"


def connect_db(path: Path, rows: bool = False) -> sqlite3.Connection:
    """A connection to a workbench database in WAL mode, so UI threads, the CLI and the
    engine's listeners read while one writes; ``rows``: rows readable by column name."""
    db = sqlite3.connect(path, timeout=30)
    db.execute("PRAGMA journal_mode=WAL")
    if rows:
        db.row_factory = sqlite3.Row
    return db


def adapters_root() -> Path:
    """The adapters registry folder; ``WORKBENCH_ADAPTERS`` overrides the repo's ``adapters/``."""
    env = os.environ.get("WORKBENCH_ADAPTERS")
    return Path(env).expanduser() if env else REPO_ROOT / "adapters"


def eval_sets_root() -> Path:
    return DATA_ROOT / "eval_sets"


def policy_dir() -> Path:
    """The store's policy pack and FAQ: product data read by chat grounding, eval and training."""
    return DATA_ROOT / "policy"


def phrases_dir() -> Path:
    """Phrase tables in 15 languages that the training-data generator fills."""
    return DATA_ROOT / "phrases"


def train_dir() -> Path:
    """The shipped training dialogs (generated from the phrase tables)."""
    return DATA_ROOT / "train"


@dataclass(frozen=True)
class EngineConfig:
    """Settings of the continuous-batching engine, passed down whole."""

    # Most rows decoding at once (slots of the running batch).
    max_batch_size: int = 16
    # When the engine is idle, how long the first arrival waits for others to share its
    # prefill; while rows decode, arrivals join at the next step without waiting.
    max_wait_ms: float = 20.0
    # Pending requests beyond this are refused with a busy error instead of queueing forever.
    max_queue: int = 256
    # Upper bound on max_new_tokens a request may ask for.
    max_new_tokens_limit: int = 1024
    # Prompt budget (tokens); longer conversations lose their oldest whole turns.
    max_prompt_tokens: int = 2048
    # Prompt tokens one prefill step processes (over all its rows): longer prompts are
    # prefilled in chunks, with a decode step of the running rows between chunks.
    prefill_chunk_tokens: int = 512
    # The same when no row is decoding: nobody waits between chunks, and bigger chunks cost
    # less per token (16 prompts of ~60 uncached tokens: 365 against 434 ms in one chunk).
    idle_prefill_chunk_tokens: int = 2048
    # The same for batch work (eval) while interactive rows decode: smaller chunks keep a
    # chat answer's inter-token time short while an eval's long prompts are prefilled.
    batch_chunk_tokens: int = 128
    # Interactive requests may take the slots of batch rows (recomputed later) when full.
    preempt_batch: bool = True
    # Memory (MiB) for reused system-prompt keys/values; 0 turns prefix reuse off.
    prefix_cache_mb: int = 256
    # Shorter system prompts are recomputed: reuse would save too little to matter.
    min_prefix_tokens: int = 32
    # Memory (MiB) for the running batch's keys/values, counted as rows × longest row (prompt
    # plus max_new_tokens); requests that would pass it wait for rows to leave. 0: no cap.
    kv_cache_mb: float = 256
    # Blocks of this many KiB and more are mmapped (glibc only); 0, the default, leaves the
    # threshold to malloc, and freed key/value buffers go back to the OS by ``malloc_trim``
    # where the slot pool changes size: see ``engine/memory.py``.
    mmap_threshold_kib: int = 0
    # How decode steps run over the one slot pool: "off" (eagerly at exact shapes), "static"
    # (padded to bucketed shapes, eagerly), "cuda" (the same, captured as CUDA graphs),
    # "auto" ("cuda" on a CUDA device, else "off"). See ``engine/capture.py``.
    # ``WORKBENCH_DECODE_GRAPHS`` sets it for every engine of a process (app, serve, eval).
    decode_graphs: str = dataclasses.field(
        default_factory=lambda: os.environ.get("WORKBENCH_DECODE_GRAPHS", "auto"))
    # The compute dtype of a float base's weights, activations and keys/values: "auto"
    # (bfloat16 on a CPU with AVX-512 BF16 or AMX, float32 on other CPUs, the loaded dtype on
    # a GPU), "float32" or "bfloat16". See ``engine/precision.py``. ``WORKBENCH_DTYPE`` sets
    # it for every engine of a process.
    dtype: str = dataclasses.field(default_factory=lambda: os.environ.get("WORKBENCH_DTYPE", "auto"))

    def replace(self, **changes: object) -> "EngineConfig":
        return dataclasses.replace(self, **changes)


ENGINE_PRESETS: dict[str, EngineConfig] = {
    # Interactive chat on a CPU: a few slots, short wait so the first token comes quickly.
    "interactive": EngineConfig(max_batch_size=8, max_wait_ms=10.0, kv_cache_mb=192),
    # Throughput for eval runs and the benchmark.
    "throughput": EngineConfig(max_batch_size=32, max_wait_ms=50.0, max_queue=1024, kv_cache_mb=1024),
    # Tests: tiny queue so the busy path is easy to reach.
    "test": EngineConfig(max_batch_size=4, max_wait_ms=5.0, max_queue=8, min_prefix_tokens=4),
}


def engine_preset(name: str) -> EngineConfig:
    if name not in ENGINE_PRESETS:
        raise UnknownNameError("engine preset", name, ENGINE_PRESETS)
    return ENGINE_PRESETS[name]
