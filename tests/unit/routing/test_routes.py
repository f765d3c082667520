"""A/B routes: sticky assignment, live reload, audit log, report, guarded promote, rollback."""
from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
from pathlib import Path

import pytest
import yaml
from scipy.stats import binomtest

from workbench.store.chatlog import ChatLog, ChatTurn
from routehelp import seed_turns

from workbench.config import REPO_ROOT
from workbench.errors import InputError, UnknownNameError
from workbench.routing.report import mean_interval, promote, route_report
from workbench.routing.routes import Arm, PromoteRefused, assign, parse_arms, token_id, unit_hash
from workbench.routing.store import REFRESH_S, RouteStore, resolve_route

INC, CAND = "cs-support@v2", "cs-support@v3"


@pytest.fixture
def store(tmp_home: Path) -> RouteStore:
    s = RouteStore()
    s.create("cs-support", parse_arms(f"{INC}=90,{CAND}=10"), who="token:test")
    return s


def test_hash_is_the_documented_formula_and_sticky(store: RouteStore) -> None:
    route = store.get("cs-support")
    digest = hashlib.sha256(b"0:cs-support:user-42").digest()
    assert unit_hash(0, "cs-support", "user-42") == int.from_bytes(digest[:8], "big") / 2**64
    arms = {assign(route, "user-42") for _ in range(50)}
    assert len(arms) == 1
    assert resolve_route("cs-support", "user-42") == arms.pop()
    assert resolve_route("not-a-route", "user-42") is None


def test_split_is_within_binomial_bounds_and_zero_weight_gets_nothing(store: RouteStore) -> None:
    route = store.get("cs-support")
    picks = [assign(route, f"user-{i}") for i in range(2000)]
    k = picks.count(CAND)
    assert picks.count(INC) + k == 2000
    assert binomtest(k, 2000, 0.10).pvalue > 0.001, k
    store.set("cs-support", parse_arms(f"{INC}=100,{CAND}=0"))
    route = store.get("cs-support")
    assert {assign(route, f"user-{i}") for i in range(500)} == {INC}


def test_weight_change_moves_only_the_users_it_must(store: RouteStore) -> None:
    before = {f"u{i}": assign(store.get("cs-support"), f"u{i}") for i in range(1000)}
    store.set("cs-support", parse_arms(f"{INC}=80,{CAND}=20"))
    after = {u: assign(store.get("cs-support"), u) for u in before}
    # Cumulative slices: every candidate user stays; only incumbent users with u in [0.8, 0.9) move.
    assert all(after[u] == CAND for u, a in before.items() if a == CAND)
    moved = sum(1 for u in before if before[u] != after[u])
    assert 40 < moved < 170, moved


def test_changes_apply_without_restart(store: RouteStore, tmp_home: Path) -> None:
    other = RouteStore()  # a second process's view of the same store
    assert other.get("cs-support").weights == {INC: 90.0, CAND: 10.0}
    store.set("cs-support", parse_arms(f"{INC}=50,{CAND}=50"))
    time.sleep(REFRESH_S)  # the other reader's copy is at most this old
    assert other.get("cs-support").weights == {INC: 50.0, CAND: 50.0}


def test_an_earlier_routes_file_is_imported_once(tmp_home: Path) -> None:
    tmp_home.mkdir(parents=True, exist_ok=True)
    (tmp_home / "routes.yaml").write_text(yaml.safe_dump({"routes": {"old": {
        "arms": [{"ref": INC, "weight": 80}, {"ref": CAND, "weight": 20}], "incumbent": INC}}}))
    store = RouteStore()
    assert store.get("old").weights == {INC: 80.0, CAND: 20.0}
    assert not (tmp_home / "routes.yaml").exists() and (tmp_home / "routes.yaml.imported").exists()
    assert [e["action"] for e in store.audit("old")] == ["import"]


def test_bad_changes_are_refused_and_change_nothing(store: RouteStore, tmp_home: Path) -> None:
    before, audited = store.routes(), len(store.audit())
    for spec in (f"{INC}=-1,{CAND}=10", f"{INC}=0,{CAND}=0", f"{INC}=5,{INC}=5", f"{INC}",
                 "../etc=5", f"{INC}=ten"):
        with pytest.raises(InputError):
            store.set("cs-support", parse_arms(spec))
    with pytest.raises(InputError, match="incumbent"):
        store.set("cs-support", incumbent="other@v1")
    with pytest.raises(UnknownNameError, match="Known: cs-support"):
        store.set("cs-suport", parse_arms(f"{INC}=1"))
    with pytest.raises(InputError, match="exists"):
        store.create("cs-support", parse_arms(f"{INC}=1"))
    assert store.routes() == before and len(store.audit()) == audited


def test_registry_check_names_unknown_versions(tmp_home: Path, workbench) -> None:
    s = RouteStore(registry=workbench.registry)
    with pytest.raises(UnknownNameError, match="v9"):
        s.create("r", parse_arms("a1@v1=90,a1@v9=10"))
    route = s.create("r", parse_arms("a1@v1=90,base=10"))
    assert route.weights == {"a1@v1": 90.0, "base": 10.0}


def test_every_weight_change_is_audited_with_who(store: RouteStore) -> None:
    store.set("cs-support", parse_arms(f"{INC}=70,{CAND}=30"), who=token_id("secret-token"))
    store.set("cs-support", margin=0.05)  # no weight change: not a weight-change entry
    store.rollback("cs-support", who="token:ops")
    log = store.audit("cs-support")
    assert [e["action"] for e in log] == ["create", "set", "rollback"]
    assert log[1]["who"] == "tok-" + hashlib.sha256(b"secret-token").hexdigest()[:10]
    assert "secret-token" not in json.dumps(log)
    assert log[1]["before"] == {INC: 90.0, CAND: 10.0} and log[1]["after"] == {INC: 70.0, CAND: 30.0}
    assert log[2]["after"] == {INC: 100.0, CAND: 0.0} and log[2]["who"] == "token:ops"
    assert all(e["time"].endswith("Z") for e in log)


def test_promote_refused_when_candidate_resolves_worse(store: RouteStore) -> None:
    log = ChatLog()
    seed_turns(log, INC, 300, 0.60, seed=1)
    seed_turns(log, CAND, 300, 0.45, seed=2)
    with pytest.raises(PromoteRefused) as err:
        promote(store, "cs-support", who="token:ops")
    msg = err.value.message
    assert "anytime-valid interval" in msg and "2.0-point margin" in msg
    rep = route_report(store.get("cs-support"))
    cand, inc = rep.arms[CAND], rep.arms[INC]
    assert f"{cand.resolved_yes}/{cand.resolved_n}" in msg and f"{inc.resolved_yes}/300" in msg
    assert cand.resolution_low < inc.resolution_rate - 0.02
    assert store.get("cs-support").weights == {INC: 90.0, CAND: 10.0}
    assert [e["action"] for e in store.audit()] == ["create"]


def test_promote_allowed_when_candidate_is_not_worse(store: RouteStore) -> None:
    log = ChatLog()
    # The anytime-valid interval needs more evidence than one fixed-sample look would.
    seed_turns(log, INC, 1500, 0.60, seed=1)
    seed_turns(log, CAND, 1500, 0.70, seed=3)
    route = promote(store, "cs-support", who="token:ops")
    assert route.weights == {INC: 0.0, CAND: 100.0} and route.incumbent == CAND
    assert route.previous == INC
    entry = store.audit()[-1]
    assert entry["action"] == "promote" and "Promote allowed" in entry["note"]
    # Rolling back right after a promotion undoes it, in one write.
    back = store.rollback("cs-support")
    assert back.weights == {INC: 100.0, CAND: 0.0} and back.incumbent == INC


def test_promote_refused_without_data(store: RouteStore) -> None:
    with pytest.raises(PromoteRefused, match="no turns"):
        promote(store, "cs-support")


def test_report_figures(store: RouteStore) -> None:
    log = ChatLog()
    seed_turns(log, INC, 40, 0.5, seed=5)
    log.record(ChatTurn("c", "en", "EU", True, "route", CAND, "tiny", "q", "", route="cs-support",
                        arm=CAND, error="Generation failed"))
    seed_turns(log, "base", 3, 0.5, seed=6, route="other-route")  # another route: not counted
    rep = route_report(store.get("cs-support")).as_json()
    inc, cand = rep["arms"][INC], rep["arms"][CAND]
    assert inc["turns"] == 40 and inc["resolved_n"] == 40 and inc["errors"] == 0
    assert cand["turns"] == 1 and cand["errors"] == 1 and cand["error_rate"] == 1.0
    assert cand["e2e_p95_ms"] is None and cand["resolution_rate"] is None
    ratings = [r["rating"] for r in log.route_turns("cs-support") if r["arm"] == INC]
    mean, lo, hi = mean_interval([float(r) for r in ratings])
    assert inc["rating_mean"] == round(mean, 4) and lo < mean < hi
    assert inc["ttft_p95_ms"] is not None and inc["e2e_p95_ms"] >= 100.0
    assert rep["weights"] == {INC: 90.0, CAND: 10.0} and rep["incumbent"] == INC


def test_old_chat_databases_gain_the_route_columns(tmp_home: Path) -> None:
    path = tmp_home / "old.sqlite"
    tmp_home.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE chat_turns (turn_id TEXT PRIMARY KEY, conversation_id TEXT NOT NULL, "
                   "created REAL NOT NULL, lang TEXT, region TEXT, grounded INTEGER NOT NULL DEFAULT 0, "
                   "pane TEXT NOT NULL, variant TEXT NOT NULL, model TEXT NOT NULL, user_text TEXT "
                   "NOT NULL, answer_text TEXT NOT NULL, total_ms REAL, ttft_ms REAL, tokens_per_s "
                   "REAL, batch_size INTEGER, rating INTEGER, resolved INTEGER)")
        db.execute("INSERT INTO chat_turns VALUES ('t1','c',1.0,'en','EU',1,'left','__base__','m',"
                   "'q','a',1,1,1,1,5,1)")
    log = ChatLog(path)
    turns = log.turns()
    assert turns[0]["turn_id"] == "t1" and turns[0]["arm"] is None and turns[0]["route"] is None
    log.record(ChatTurn("c", "en", "EU", True, "route", INC, "m", "q", "a", route="r", arm=INC))
    assert [t["arm"] for t in log.route_turns("r")] == [INC]
    ChatLog(path)  # opening again is a no-op


def test_rollback_is_one_action(store: RouteStore) -> None:
    store.set("cs-support", parse_arms(f"{INC}=50,{CAND}=50"))
    route = store.rollback("cs-support")
    assert route.weights == {INC: 100.0, CAND: 0.0}
    assert {assign(route, f"u{i}") for i in range(300)} == {INC}
    assert Arm(INC, 100.0) in route.arms


def test_route_split_script_passes(tmp_home: Path, capsys: pytest.CaptureFixture) -> None:
    import importlib.util
    import json

    path = REPO_ROOT / "workbench" / "devtools" / "route_split.py"
    spec = importlib.util.spec_from_file_location("route_split", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.main(["--users", "2000", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["split"]["users"] == 2000 and out["split"]["sticky"] and out["split"]["within_bounds"]
    assert [c["allowed"] for c in out["promote"]] == [False, True]
    assert os.environ["WORKBENCH_HOME"] == str(tmp_home)  # the script put the caller's home back


def test_routes_cli(tmp_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    from click.testing import CliRunner

    from workbench.cli import main

    monkeypatch.setenv("WORKBENCH_ADMIN_TOKEN", "cli-token")
    run = CliRunner().invoke
    res = run(main, ["routes", "create", "r1", "--arm", "base=90", "--arm", "base2@v1=10", "--unchecked"])
    assert res.exit_code == 0 and "base 90%" in res.output, res.output
    res = run(main, ["routes", "create", "r2", "--arm", "nope@v1=1"])  # checked against the registry
    assert res.exit_code == 2 and "Unknown adapter 'nope'" in res.output
    res = run(main, ["routes", "set", "r1", "--arm", "base=80,base2@v1=20", "--unchecked"])
    assert res.exit_code == 0 and "base2@v1 20%" in res.output
    res = run(main, ["routes", "report", "r1", "--json"])
    rep = json.loads(res.output)
    assert rep["weights"] == {"base": 80.0, "base2@v1": 20.0}
    assert rep["promote"]["base2@v1"]["allowed"] is False
    res = run(main, ["routes", "promote", "r1"])
    assert res.exit_code == 4 and "Promote refused" in res.output and "anytime-valid" in res.output
    res = run(main, ["routes", "rollback", "r1"])
    assert res.exit_code == 0 and "base 100%" in res.output
    res = run(main, ["routes", "list", "--json"])
    assert json.loads(res.output)["arms"][0] == {"ref": "base", "weight": 100.0}
    res = run(main, ["routes", "audit", "r1"])
    assert res.output.count(token_id("cli-token")) == 3
