"""The route view and the Chat tab's customer view, through their builder functions."""
from __future__ import annotations

import pytest

from workbench.errors import AuthError, InputError, UnknownNameError, WorkbenchError
from workbench.routing.routes import parse_arms
from workbench.routing.store import RouteStore
from workbench.ui.routes_panel import route_view, start_customer_turn, who_from_token


def test_customer_view_routes_sticky_and_stores_the_arm(workbench) -> None:
    RouteStore().create("support", parse_arms("a1@v1=50,a2@v1=50"))
    arms = {}
    for session in ("s-1", "s-2", "s-3", "s-4", "s-5", "s-6"):
        for _ in range(2):
            handle = start_customer_turn(workbench, "support", session, "Where is my order?", "en",
                                         "EU", True, [], 4, 0.0, 1.0, "conv")
            assert handle.text() == handle.request.output_text
            workbench.rate(handle.id, rating=4, resolved=True)  # the service recorded the turn
            arms.setdefault(session, set()).add(handle.variant.arm)
    assert all(len(a) == 1 for a in arms.values())  # each session kept its arm
    assert set().union(*arms.values()) == {"a1@v1", "a2@v1"}
    turns = workbench.chatlog.route_turns("support")
    assert len(turns) == 12 and {t["arm"] for t in turns} == {"a1@v1", "a2@v1"}
    rows, text = route_view("support")
    assert sum(int(r[3]) for r in rows) == 12 and "incumbent **a1@v1**" in text
    assert "Promote refused" in text or "Promote allowed" in text


def test_customer_view_refusals(workbench) -> None:
    with pytest.raises(WorkbenchError, match="Pick a route"):
        start_customer_turn(workbench, "", "s", "q", "en", "EU", True, [], 4, 0.0, 1.0)
    with pytest.raises(UnknownNameError):
        start_customer_turn(workbench, "nope", "s", "q", "en", "EU", True, [], 4, 0.0, 1.0)
    RouteStore().create("ghost", parse_arms("a1@v9=1"))  # a version that is not served
    with pytest.raises(UnknownNameError):
        start_customer_turn(workbench, "ghost", "s", "q", "en", "EU", True, [], 4, 0.0, 1.0)


def test_route_changes_need_the_admin_token(workbench) -> None:
    workbench.admin_token = None
    with pytest.raises(AuthError, match="off"):
        who_from_token(workbench, "x")
    workbench.admin_token = "ui-admin"
    with pytest.raises(AuthError):
        who_from_token(workbench, "wrong")
    assert who_from_token(workbench, "ui-admin").startswith("tok-")


def test_tabs_build_with_the_route_panel(workbench) -> None:
    from workbench.ui.app import build_demo

    RouteStore().create("support", parse_arms("a1@v1=90,base=10"))
    demo = build_demo(workbench)
    ids = {getattr(b, "elem_id", None) for b in demo.blocks.values()}
    assert {"routes-table", "routes-promote", "routes-rollback", "chat-mode", "chat-customer",
            "chat-route"} <= ids


def test_the_monitor_shows_each_canary(workbench) -> None:
    from workbench.ui.monitor_tab import live_markdown

    RouteStore().create("support", parse_arms("a1@v1=90,a2@v1=10"),
                        guard={"auto": True, "min_feedback": 5, "steps": [50, 100]})
    text = live_markdown(workbench)
    assert "**Canary** support: guard on: collecting 0/5 feedback on a2@v1" in text


def test_the_monitor_shows_outcomes_per_variant(workbench) -> None:
    from workbench.store.chatlog import ChatTurn, Feedback
    from workbench.ui.monitor_tab import outcome_table

    for i, (resolved, escalated) in enumerate([(True, False), (False, True)]):
        tid = workbench.chatlog.record(ChatTurn("c", "en", "EU", True, "api", "a1@v1", "tiny", "q", "a"))
        workbench.chatlog.give_feedback(tid, Feedback(rating=5 - 3 * i, resolved=resolved,
                                                      escalated=escalated), "api")
    (row,) = outcome_table(workbench, 300).to_dict(orient="records")
    assert row["variant"] == "a1@v1" and row["answers"] == "2"
    assert row["resolution [95% CI]"].startswith("50.0% (1/2)")
    assert row["escalation [95% CI]"].startswith("50.0% (1/2)") and row["rating [95% CI]"].startswith("3.50")


def test_the_route_view_sets_a_guard(workbench) -> None:
    from workbench.ui.routes_panel import _route_handlers, guard_policy

    workbench.admin_token = "ui-admin"
    on_create, _set, _promote, _rollback, on_guard = _route_handlers(workbench)
    on_create("ui-admin", "support", "a1@v1=90, a2@v1=10", "", 0.02, "")
    assert RouteStore().get("support").guard is None
    name, message = on_guard("ui-admin", "support", '{"auto": true, "min_feedback": 50}')
    assert message.startswith("Guard saved") and RouteStore().get("support").guard["min_feedback"] == 50
    rows, text = route_view("support")
    assert "Automatic canary: guard on: collecting 0/50 feedback on a2@v1" in text
    assert RouteStore().audit("support")[-1]["action"] == "guard"
    for bad, why in (("{auto: true}", "not JSON"), ("[1]", "JSON object"), ('{"margn": 0.1}', "margin")):
        with pytest.raises(InputError, match=why):
            guard_policy(bad)
    on_guard("ui-admin", "support", "")
    assert RouteStore().get("support").guard is None
