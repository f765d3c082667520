"""The shared store on SQLite and on a real PostgreSQL server: served turns, feedback with its
audit, retention, masking and hashing, routes that every reader sees within a second."""
from __future__ import annotations

import sqlite3
import time

import pytest

from workbench.errors import InputError, StoreError
from workbench.routing.routes import parse_arms
from workbench.routing.store import REFRESH_S, RouteStore
from workbench.store.chatlog import ChatLog, ChatTurn, Feedback

TURN = ChatTurn("conv-1", "en", "GB", True, "api", "a1@v1", "tiny", "Call me on +44 7700 900123",
                "Sure.", 120.0, 30.0, 12.0, 2, route="support", arm="a1@v1", face="api",
                finish_reason="stop", prompt_tokens=40, completion_tokens=3, user="customer-42")


def test_turns_are_masked_hashed_and_keyed_by_their_answer_id(db_url: str) -> None:
    log = ChatLog(url=db_url)
    log.record(TURN, turn_id="chatcmpl-abc")
    row = log.get("chatcmpl-abc")
    assert "7700" not in row["user_text"] and row["face"] == "api" and row["completion_tokens"] == 3
    assert row["user_hash"] and "customer-42" not in str(row)
    assert [t["turn_id"] for t in log.route_turns("support")] == ["chatcmpl-abc"]


def test_feedback_replaces_and_is_audited(db_url: str) -> None:
    log = ChatLog(url=db_url)
    log.record(TURN, turn_id="chatcmpl-1")
    log.give_feedback("chatcmpl-1", Feedback(rating=2, resolved=False), "api")
    row = log.give_feedback("chatcmpl-1", Feedback(escalated=True, comment="agent took over"), "api")
    assert (row["rating"], row["resolved"], row["escalated"]) == (None, None, 1)
    history = log.feedback_history("chatcmpl-1")
    assert len(history) == 2 and '"rating": 2' in history[1]["before"]
    for bad in (Feedback(), Feedback(rating=0), Feedback(comment="x" * 2001, rating=3)):
        with pytest.raises(InputError):
            log.give_feedback("chatcmpl-1", bad, "api")
    with pytest.raises(StoreError, match="No served answer"):
        log.give_feedback("chatcmpl-missing", Feedback(rating=5), "api")
    assert len(log.feedback_history("chatcmpl-1")) == 2  # refusals wrote nothing


def test_text_can_be_left_out_and_old_turns_expire(db_url: str, monkeypatch) -> None:
    monkeypatch.setenv("WORKBENCH_STORE_TEXT", "0")
    log = ChatLog(url=db_url)
    log.record(TURN, turn_id="chatcmpl-quiet")
    row = log.get("chatcmpl-quiet")
    assert row["user_text"] == row["answer_text"] == "" and row["ttft_ms"] == 30.0
    log.give_feedback("chatcmpl-quiet", Feedback(rating=4), "api")
    assert log.purge(time.time() + 1) == 1
    assert log.get("chatcmpl-quiet") is None and log.feedback_history("chatcmpl-quiet") == []


def test_a_route_made_by_one_reader_reaches_another_within_two_seconds(db_url: str) -> None:
    one, other = RouteStore(url=db_url), RouteStore(url=db_url)  # two replicas' views
    assert other.names() == []
    one.create("support", parse_arms("a1@v1=90,a2@v1=10"),
               guard={"auto": True, "min_feedback": 10, "steps": [50, 100]})
    deadline = time.monotonic() + 2.0
    while "support" not in other.names():
        assert time.monotonic() < deadline, "the other replica never saw the route"
        time.sleep(0.1)
    assert other.get("support").guard["min_feedback"] == 10
    one.set("support", parse_arms("a1@v1=50,a2@v1=50"))
    time.sleep(REFRESH_S)
    assert other.get("support").weights == {"a1@v1": 50.0, "a2@v1": 50.0}
    assert [e["action"] for e in other.audit("support")] == ["create", "set"]


def test_a_release_before_migrations_keeps_its_turns(tmp_home) -> None:
    tmp_home.mkdir(parents=True, exist_ok=True)
    path = tmp_home / "old.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE chat_turns (turn_id TEXT PRIMARY KEY, conversation_id TEXT NOT NULL, "
                   "created REAL NOT NULL, lang TEXT, region TEXT, grounded INTEGER NOT NULL DEFAULT 0, "
                   "pane TEXT NOT NULL, variant TEXT NOT NULL, model TEXT NOT NULL, user_text TEXT "
                   "NOT NULL, answer_text TEXT NOT NULL, total_ms REAL, ttft_ms REAL, tokens_per_s "
                   "REAL, batch_size INTEGER, rating INTEGER, resolved INTEGER, route TEXT, arm TEXT)")
        db.execute("INSERT INTO chat_turns VALUES ('t1','c',1.0,'en','EU',1,'left','base','m',"
                   "'q','a',1,1,1,1,5,1,'r','base')")
    log = ChatLog(path)
    assert log.route_turns("r")[0]["resolved"] == 1 and log.get("t1")["rating"] == 5
    log.give_feedback("t1", Feedback(escalated=True), "page", merge=True)
    assert log.get("t1")["escalated"] == 1 and log.get("t1")["rating"] == 5


def test_replicas_starting_together_migrate_once(db_url: str) -> None:
    """Two processes opening a new database at once: one migrates, the other waits for it."""
    import subprocess
    import sys

    code = ("import sys; from workbench.store.chatlog import ChatLog; ChatLog(url=sys.argv[1]); "
            "print('ok')")
    procs = [subprocess.Popen([sys.executable, "-c", code, db_url], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for _ in range(3)]
    outs = [p.communicate(timeout=120)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
