"""Eval runs and their per-item results in the workbench SQLite file (tables ``eval_*``).

Every answered item is written in its own transaction (answer, latencies and all its scores
together), so a run killed at any point keeps what it finished and ``--resume`` redoes only
the rest. A connection is opened per call: the UI's threads and the CLI never share one.
"""
from __future__ import annotations

import json
import sqlite3
import time
import uuid
from contextlib import closing
from dataclasses import asdict, dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pandas as pd

from workbench.config import connect_db, db_path
from workbench.errors import StoreError, UnknownNameError
from workbench.eval.metrics import ItemOutcome
from workbench.eval.schema import EvalItem, Score

SCHEMA = """
CREATE TABLE IF NOT EXISTS eval_runs (
    run_id TEXT PRIMARY KEY,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    status TEXT NOT NULL,           -- running | interrupted | finished | failed
    model TEXT NOT NULL,            -- preset name; model_id, precision, device describe it
    model_id TEXT, precision TEXT, device TEXT,
    variants TEXT NOT NULL,         -- JSON list of variant names (__base__ or adapter names)
    adapters TEXT NOT NULL,         -- JSON {variant: name@version}
    suites TEXT NOT NULL,           -- JSON list of {name, path, hash, n_items}
    item_limit INTEGER,             -- items per suite, NULL for all
    total INTEGER NOT NULL,         -- item x variant pairs the run covers
    engine TEXT NOT NULL,           -- JSON EngineConfig
    packages TEXT NOT NULL,         -- JSON {package: version}
    error TEXT
);
CREATE TABLE IF NOT EXISTS eval_answers (
    run_id TEXT NOT NULL REFERENCES eval_runs(run_id),
    suite TEXT NOT NULL, item_id TEXT NOT NULL, variant TEXT NOT NULL,
    variant_label TEXT NOT NULL,    -- name@version at the time of the run
    lang TEXT NOT NULL, region TEXT,
    expected TEXT NOT NULL,         -- JSON of the item's expected fields (and its paraphrase group)
    answer TEXT NOT NULL,
    status TEXT NOT NULL,           -- engine status: finished | failed | cancelled
    finish_reason TEXT, error TEXT,
    queue_ms REAL, ttft_ms REAL, total_ms REAL, tpot_ms REAL,
    prompt_tokens INTEGER, completion_tokens INTEGER, batch_size INTEGER, tokens_per_s REAL,
    correct INTEGER,                -- first content scorer passed (NULL: not applicable)
    resolved INTEGER NOT NULL,
    prediction TEXT,                -- what the first content scorer read from the answer
    created REAL NOT NULL,
    PRIMARY KEY (run_id, suite, item_id, variant)
);
CREATE TABLE IF NOT EXISTS eval_scores (
    run_id TEXT NOT NULL, suite TEXT NOT NULL, item_id TEXT NOT NULL, variant TEXT NOT NULL,
    scorer TEXT NOT NULL,
    passed INTEGER,                 -- 1, 0, or NULL when the check does not apply
    detail TEXT, prediction TEXT,
    PRIMARY KEY (run_id, suite, item_id, variant, scorer)
);
"""
STATUSES = ("running", "interrupted", "finished", "failed")
PACKAGES = ("glm-support-workbench", "torch", "transformers", "peft", "gradio", "lingua-language-detector",
            "scikit-learn", "pandas")


@dataclass(frozen=True)
class SuiteRef:
    """A suite as a run recorded it."""

    # Suite name.
    name: str
    # Folder it was loaded from.
    path: str
    # sha256 of its files when the run started.
    hash: str
    # Items of the suite the run covers (after --limit).
    n_items: int


@dataclass(frozen=True)
class RunRecord:
    """One eval run's header row."""

    # Unique id, e.g. 20250101-120000-ab12cd.
    run_id: str
    # Unix time of creation.
    created: float
    # running | interrupted | finished | failed.
    status: str
    # Model preset name and what it resolved to.
    model: str
    model_id: str
    precision: str
    device: str
    # Variant names in the run (__base__ or adapter names).
    variants: list[str]
    # Variant -> name@version served when the run started.
    adapters: dict[str, str]
    # The suites and their hashes.
    suites: list[SuiteRef]
    # Items per suite, None for all.
    limit: int | None
    # Item × variant pairs the run covers.
    total: int
    # Engine settings (EngineConfig as a dict).
    engine: dict = field(default_factory=dict)
    # Package versions.
    packages: dict[str, str] = field(default_factory=dict)
    # Why it failed or stopped, if it did.
    error: str | None = None


@dataclass(frozen=True)
class ItemResult:
    """One item answered by one variant, scored: what the runner hands the store."""

    # The run it belongs to.
    run_id: str
    # Suite name.
    suite: str
    # The item.
    item: EvalItem
    # Variant name and its name@version label.
    variant: str
    variant_label: str
    # The engine's completion fields.
    answer: str
    status: str
    finish_reason: str | None
    error: str | None
    metrics: dict
    # Scorer name -> score.
    scores: dict[str, Score]
    # Correct / resolved.
    outcome: ItemOutcome


def new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:6]


def package_versions() -> dict[str, str]:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def _flag(value: bool | None) -> int | None:
    return None if value is None else int(value)


class EvalStore:
    """Runs and item results; every method opens its own connection."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or db_path()
        with closing(self._connect()) as db, db:
            db.executescript(SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        return connect_db(self.path, rows=True)

    # ---- runs ----------------------------------------------------------------------------
    def create_run(self, rec: RunRecord) -> None:
        row = (rec.run_id, rec.created, time.time(), rec.status, rec.model, rec.model_id,
               rec.precision, rec.device, json.dumps(rec.variants), json.dumps(rec.adapters),
               json.dumps([asdict(s) for s in rec.suites]), rec.limit, rec.total,
               json.dumps(rec.engine), json.dumps(rec.packages), rec.error)
        with closing(self._connect()) as db, db:
            db.execute("INSERT INTO eval_runs VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", row)

    def set_status(self, run_id: str, status: str, error: str | None = None) -> None:
        if status not in STATUSES:
            raise StoreError(f"Unknown run status {status!r}; use one of {', '.join(STATUSES)}.")
        self.get_run(run_id)
        with closing(self._connect()) as db, db:
            db.execute("UPDATE eval_runs SET status = ?, error = ?, updated = ? WHERE run_id = ?",
                       (status, error, time.time(), run_id))

    def get_run(self, run_id: str) -> RunRecord:
        with closing(self._connect()) as db:
            row = db.execute("SELECT * FROM eval_runs WHERE run_id = ?", (run_id,)).fetchone()
            if row is None:
                known = [r[0] for r in db.execute(
                    "SELECT run_id FROM eval_runs ORDER BY created DESC LIMIT 20")]
                raise UnknownNameError("eval run", run_id, known)
        return _record(row)

    def list_runs(self, limit: int = 100) -> list[RunRecord]:
        with closing(self._connect()) as db:
            rows = db.execute("SELECT * FROM eval_runs ORDER BY created DESC LIMIT ?", (limit,))
            return [_record(r) for r in rows]

    def progress(self, run_id: str) -> int:
        """How many item × variant pairs the run has answered successfully."""
        return len(self.done_keys(run_id))

    # ---- items ---------------------------------------------------------------------------
    def record_item(self, res: ItemResult) -> None:
        """Write one answered item and its scores in one transaction (all or nothing)."""
        m = res.metrics
        answer = (res.run_id, res.suite, res.item.id, res.variant, res.variant_label, res.item.lang,
                  res.item.region, json.dumps(_expected(res.item), ensure_ascii=False),
                  res.answer, res.status, res.finish_reason, res.error, m.get("queue_ms"),
                  m.get("ttft_ms"), m.get("total_ms"), m.get("tpot_ms"), m.get("prompt_tokens"),
                  m.get("completion_tokens"), m.get("batch_size"), m.get("tokens_per_s"),
                  _flag(res.outcome.correct), int(res.outcome.resolved),
                  _primary_prediction(res.scores), time.time())
        scores = [(res.run_id, res.suite, res.item.id, res.variant, name, _flag(s.passed), s.detail,
                   s.prediction) for name, s in res.scores.items()]
        with closing(self._connect()) as db, db:
            if db.execute("SELECT status FROM eval_runs WHERE run_id = ?", (res.run_id,)).fetchone() is None:
                raise StoreError(f"No eval run {res.run_id} to record results into.")
            db.execute("INSERT OR REPLACE INTO eval_answers VALUES "
                       "(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", answer)
            db.execute("DELETE FROM eval_scores WHERE run_id=? AND suite=? AND item_id=? AND variant=?",
                       answer[:4])
            db.executemany("INSERT INTO eval_scores VALUES (?,?,?,?,?,?,?,?)", scores)
            db.execute("UPDATE eval_runs SET updated = ? WHERE run_id = ?", (time.time(), res.run_id))

    def done_keys(self, run_id: str) -> set[tuple[str, str, str]]:
        """(suite, item_id, variant) already answered; failed generations are redone on resume."""
        with closing(self._connect()) as db:
            rows = db.execute("SELECT suite, item_id, variant FROM eval_answers "
                              "WHERE run_id = ? AND status = 'finished'", (run_id,))
            return {tuple(r) for r in rows}

    def results_frame(self, run_id: str) -> pd.DataFrame:
        """One row per item × variant with answer, latencies, outcome and ``score:<name>`` columns."""
        self.get_run(run_id)
        with closing(self._connect()) as db:
            answers = pd.read_sql_query("SELECT * FROM eval_answers WHERE run_id = ? "
                                        "ORDER BY suite, item_id, variant", db, params=(run_id,))
            scores = pd.read_sql_query("SELECT suite, item_id, variant, scorer, passed, detail "
                                       "FROM eval_scores WHERE run_id = ?", db, params=(run_id,))
        expected = answers["expected"].map(json.loads)
        answers["expected_intent"] = expected.map(lambda e: e.get("intent"))
        answers["group"] = expected.map(lambda e: e.get("group"))
        # Runs stored before the base was labelled "base" say "__base__": one name for readers.
        answers["variant_label"] = answers["variant_label"].replace("__base__", "base")
        # A run submits whole suites at once, so an item's wait behind the run's own other
        # items says nothing about the variant: latencies count from the start of its batch.
        queue = answers["queue_ms"].fillna(0.0)
        answers["service_ms"] = answers["total_ms"] - queue
        answers["service_ttft_ms"] = answers["ttft_ms"] - queue
        if scores.empty:
            return answers
        keys = ["suite", "item_id", "variant"]
        passed = scores.pivot(index=keys, columns="scorer", values="passed")
        detail = scores.pivot(index=keys, columns="scorer", values="detail")
        passed.columns = [f"score:{c}" for c in passed.columns]
        detail.columns = [f"detail:{c}" for c in detail.columns]
        return answers.merge(passed.join(detail).reset_index(), on=keys, how="left")


def _expected(item: EvalItem) -> dict:
    """The item's expected fields, with its paraphrase group when it has one."""
    return item.expected.as_dict() | ({"group": item.group} if item.group else {})


def _primary_prediction(scores: dict[str, Score]) -> str | None:
    for name in ("intent_label", "verdict"):
        if name in scores and scores[name].prediction is not None:
            return scores[name].prediction
    return None


def _record(row: sqlite3.Row) -> RunRecord:
    return RunRecord(run_id=row["run_id"], created=row["created"], status=row["status"],
                     model=row["model"], model_id=row["model_id"] or "", precision=row["precision"] or "",
                     device=row["device"] or "", variants=json.loads(row["variants"]),
                     adapters=json.loads(row["adapters"]),
                     suites=[SuiteRef(**s) for s in json.loads(row["suites"])],
                     limit=row["item_limit"], total=row["total"], engine=json.loads(row["engine"]),
                     packages=json.loads(row["packages"]), error=row["error"])
