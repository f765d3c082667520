"""The shared store: one SQLAlchemy engine per database URL, migrated by Alembic on first use.

By default the store is a SQLite file under ``WORKBENCH_HOME``; ``WORKBENCH_DB_URL`` (a
SQLAlchemy URL such as ``postgresql+psycopg://root@/workbench?host=/var/run/postgresql``) puts
it in PostgreSQL, where several ``workbench serve`` replicas share served turns, feedback and
routes. A database that goes away surfaces as :class:`StoreUnavailable` (the API answers 503
with ``Retry-After``); the next call after it comes back works again, without a restart.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from collections.abc import Iterator
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event, exc, make_url, text

from workbench.config import db_path
from workbench.errors import WorkbenchError

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
# Any fixed number: the advisory lock replicas take while one of them migrates.
MIGRATION_LOCK_KEY = 7_242_021
_engines: dict[str, Engine] = {}
_migrated: set[str] = set()
_lock = threading.Lock()


class StoreUnavailable(WorkbenchError):
    """The database cannot be reached right now; nothing was written. Retry shortly."""

    exit_code = 6


def database_url(path: Path | None = None) -> str:
    """``WORKBENCH_DB_URL``, else the SQLite file (``path`` or the workbench database)."""
    if path is None and os.environ.get("WORKBENCH_DB_URL"):
        return os.environ["WORKBENCH_DB_URL"]
    return f"sqlite:///{path or db_path()}"


def _sqlite_pragmas(dbapi_conn: object, _record: object) -> None:
    cur = dbapi_conn.cursor()  # type: ignore[attr-defined]
    cur.execute("PRAGMA journal_mode=WAL")  # readers never wait for the one writer
    cur.close()


def engine_for(url: str) -> Engine:
    """The process's engine for ``url`` (created and migrated once)."""
    with _lock:
        eng = _engines.get(url)
        if eng is None:
            sqlite = url.startswith("sqlite")
            eng = create_engine(url, pool_pre_ping=True,
                                connect_args={"timeout": 30, "check_same_thread": False} if sqlite
                                else {"connect_timeout": 5})
            if sqlite:
                event.listen(eng, "connect", _sqlite_pragmas)
            _engines[url] = eng
        if url not in _migrated:
            with translate_errors(url):
                migrate(eng)
            _migrated.add(url)
        return eng


def dispose_engine(url: str) -> None:
    """Close the process's connections to ``url`` (a database about to be dropped)."""
    with _lock:
        eng = _engines.pop(url, None)
        _migrated.discard(url)
    if eng is not None:
        eng.dispose()


def migrate(eng: Engine) -> None:
    """Bring the schema to the newest migration (old SQLite files are upgraded in place).
    Replicas starting together take turns: one migrates, the others then find it done."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with _migration_lock(eng), eng.begin() as conn:
        if conn.dialect.name == "postgresql":  # held until this transaction ends
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


@contextlib.contextmanager
def _migration_lock(eng: Engine) -> Iterator[None]:
    """A file lock beside a SQLite database (PostgreSQL uses an advisory lock instead)."""
    database = eng.url.database
    if eng.dialect.name != "sqlite" or not database or database == ":memory:":
        yield
        return
    with open(f"{database}.migrate-lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@contextlib.contextmanager
def translate_errors(url: str) -> Iterator[None]:
    """A lost or refused connection becomes StoreUnavailable; the transaction rolled back."""
    try:
        yield
    except (exc.OperationalError, exc.InterfaceError) as err:
        if url.startswith("sqlite") and "locked" not in str(err.orig):
            raise
        raise StoreUnavailable(f"The database is unavailable ({type(err.orig).__name__}); "
                               "nothing was written. Try again shortly.") from err


class Database:
    """A handle on the store for one URL: transactions with errors translated."""

    def __init__(self, path: Path | None = None, url: str | None = None) -> None:
        self.url = url or database_url(path)
        self.path = path if path is not None else (db_path() if self.url.startswith("sqlite") else None)

    @property
    def engine(self) -> Engine:
        return engine_for(self.url)

    def describe(self) -> str:
        """The URL as users may see it (no password)."""
        return make_url(self.url).render_as_string(hide_password=True)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextlib.contextmanager
    def begin(self) -> Iterator[Connection]:
        """One transaction: committed when the block ends, rolled back on any error."""
        with translate_errors(self.url):
            eng = self.engine
            with eng.begin() as conn:
                yield conn
