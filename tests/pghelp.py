"""A real PostgreSQL server for the store's tests: Debian's cluster, started if it is down.

Peer authentication: the tests connect over the Unix socket as a role named after the OS
user (created as superuser once). A machine without PostgreSQL fails these tests: it is
installed on every machine the project runs on, and a skipped database test hides a broken
store.
"""
from __future__ import annotations

import getpass
import shutil
import subprocess
import uuid
from dataclasses import dataclass

import psycopg
import pytest

SOCKET_DIR = "/var/run/postgresql"


@dataclass(frozen=True)
class Cluster:
    version: str
    name: str
    port: int

    def ctl(self, action: str) -> None:
        subprocess.run(["pg_ctlcluster", self.version, self.name, action], check=True,
                       capture_output=True, timeout=120)

    def admin_dsn(self) -> str:
        return f"host={SOCKET_DIR} port={self.port} dbname=postgres user={getpass.getuser()}"

    def url(self, dbname: str) -> str:
        return (f"postgresql+psycopg://{getpass.getuser()}@/{dbname}"
                f"?host={SOCKET_DIR}&port={self.port}")


def _as_postgres(*cmd: str) -> str:
    return subprocess.run(["runuser", "-u", "postgres", "--", *cmd], check=True, capture_output=True,
                          text=True, timeout=60).stdout.strip()


def ensure_cluster() -> Cluster:
    """The first cluster, running, with a superuser role for this OS user."""
    if not shutil.which("pg_lsclusters"):
        pytest.fail("PostgreSQL is not installed (apt-get install postgresql); the store's tests need it.")
    lines = subprocess.run(["pg_lsclusters", "-h"], check=True, capture_output=True, text=True).stdout
    if not lines.strip():
        pytest.fail("No PostgreSQL cluster exists (pg_createcluster 15 main).")
    version, name, port, status, *_ = lines.splitlines()[0].split()
    cluster = Cluster(version, name, int(port))
    if status != "online":
        cluster.ctl("start")
    user = getpass.getuser()
    if user != "postgres" and not _as_postgres("psql", "-p", port, "-tAc",
                                                f"SELECT 1 FROM pg_roles WHERE rolname = '{user}'"):
        _as_postgres("createuser", "-p", port, "--superuser", user)
    return cluster


def new_database(cluster: Cluster) -> str:
    name = "wb_" + uuid.uuid4().hex[:12]
    with psycopg.connect(cluster.admin_dsn(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return name


def drop_database(cluster: Cluster, name: str) -> None:
    with psycopg.connect(cluster.admin_dsn(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
