"""Two ``workbench serve`` replicas on one PostgreSQL database share routes, served turns and
feedback; a database that goes away costs no answer, and both work again when it is back."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from apihelp import ADMIN, KEY, ask, serve_tiny
from pghelp import drop_database, new_database

from workbench.config import REPO_ROOT
from workbench.store.db import dispose_engine

pytestmark = pytest.mark.slow
AUTH = {"Authorization": f"Bearer {KEY}"}
ADMIN_AUTH = {"Authorization": f"Bearer {ADMIN}"}


@pytest.fixture
def pg_url(pg_cluster, tmp_home, monkeypatch) -> Iterator[str]:
    name = new_database(pg_cluster)
    url = pg_cluster.url(name)
    monkeypatch.setenv("WORKBENCH_DB_URL", url)
    yield url
    dispose_engine(url)
    drop_database(pg_cluster, name)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def adapter_a1(tmp_home, tiny_loaded, make_adapter) -> None:
    """a1@v1 in the shared adapters folder, before either replica starts."""
    make_adapter(tiny_loaded, "a1", "v1", seed=1, root=Path(os.environ["WORKBENCH_ADAPTERS"]))


@pytest.fixture
def replica_b(pg_url, tmp_home, adapter_a1) -> Iterator[str]:
    """A second replica in its own process, on the same database and adapters folder."""
    port = free_port()
    # Its own WORKBENCH_HOME, as on another host: only the database is shared.
    env = {**os.environ, "WORKBENCH_DB_URL": pg_url, "WORKBENCH_ADMIN_TOKEN": ADMIN,
           "WORKBENCH_API_KEY": KEY, "WORKBENCH_HOME": str(tmp_home.parent / "home-b")}
    proc = subprocess.Popen([sys.executable, "-m", "workbench.cli", "serve", "--model", "tiny-glm",
                             "--port", str(port), "--preset", "test"], cwd=REPO_ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else "replica B exited"
            try:
                if httpx.get(url + "/models", headers=AUTH, timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "replica B did not start"
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        proc.wait(30)


def chat(v1: str, model: str, user: str) -> httpx.Response:
    body = {"model": model, "messages": ask(), "max_tokens": 3, "temperature": 0, "user": user}
    return httpx.post(v1 + "/chat/completions", json=body, headers=AUTH, timeout=60)


def test_replicas_share_routes_turns_and_feedback(tiny_loaded, make_adapter, pg_url, replica_b) -> None:
    with serve_tiny(tiny_loaded, make_adapter, api_key=KEY, adapters=()) as a:
        made = httpx.post(a.v1 + "/routes", headers=ADMIN_AUTH, timeout=30, json={
            "name": "support", "arms": [{"ref": "a1@v1", "weight": 50}, {"ref": "base", "weight": 50}]})
        assert made.status_code == 200, made.text
        t0 = time.monotonic()
        while chat(replica_b, "support", "u-0").status_code != 200:  # B learns the route
            assert time.monotonic() - t0 < 2.0, "replica B did not serve the new route in 2 s"
            time.sleep(0.1)
        served_by_b = [chat(replica_b, "support", f"u-{i}").json()["id"] for i in range(1, 7)]
        for turn_id in served_by_b:  # feedback to the replica that did not serve the answer
            resp = httpx.post(a.v1 + "/feedback", json={"id": turn_id, "resolved": True, "rating": 5},
                              headers=AUTH, timeout=30)
            assert resp.status_code == 200, resp.text
        for v1 in (a.v1, replica_b):
            report = httpx.get(v1 + "/routes/support/report", headers=ADMIN_AUTH, timeout=30).json()
            arms = report["arms"].values()
            assert sum(arm["turns"] for arm in arms) == 7 and sum(arm["resolved_n"] for arm in arms) == 6


def test_a_lost_database_costs_no_answer(tiny_loaded, make_adapter, pg_url, pg_cluster) -> None:
    with serve_tiny(tiny_loaded, make_adapter, api_key=KEY) as a:
        made = httpx.post(a.v1 + "/routes", headers=ADMIN_AUTH, timeout=30, json={
            "name": "support", "arms": [{"ref": "a1@v1", "weight": 100}]})
        assert made.status_code == 200, made.text
        before = chat(a.v1, "support", "u-1").json()["id"]
        a.wb.recorder.flush()
        pg_cluster.ctl("stop")
        try:
            time.sleep(1.1)  # past the routes' refresh: the next request must re-read them
            during = chat(a.v1, "support", "u-2")
            assert during.status_code == 200, during.text  # inference keeps serving, routes too
            refused = httpx.post(a.v1 + "/feedback", json={"id": before, "rating": 4}, headers=AUTH,
                                 timeout=30)
            assert refused.status_code == 503 and refused.headers["retry-after"], refused.text
        finally:
            pg_cluster.ctl("start")
        for turn_id in (before, during.json()["id"]):  # the answer from the outage was kept
            resp = httpx.post(a.v1 + "/feedback", json={"id": turn_id, "rating": 4}, headers=AUTH,
                              timeout=60)
            assert resp.status_code == 200, resp.text
        assert a.wb.chatlog.feedback_history(before)[0]["after"].startswith('{"rating": 4')
