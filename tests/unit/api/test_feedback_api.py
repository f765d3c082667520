"""POST /v1/feedback: outcomes for answers the API served, replaced and audited; the route
report counts them; a route's automatic guard rolls a worse candidate back by itself."""
from __future__ import annotations

import httpx
from apihelp import KEY, ask, serve_tiny

from workbench.routing.routes import parse_arms
from workbench.routing.store import RouteStore

HEADERS = {"Authorization": f"Bearer {KEY}"}


def chat(s, model: str = "a1", user: str | None = None) -> httpx.Response:
    body = {"model": model, "messages": ask(), "max_tokens": 3, "temperature": 0}
    if user:
        body["user"] = user
    return httpx.post(s.v1 + "/chat/completions", json=body, headers=HEADERS, timeout=60)


def feedback(s, body: dict, headers: dict | None = None) -> httpx.Response:
    return httpx.post(s.v1 + "/feedback", json=body, headers=HEADERS if headers is None else headers,
                      timeout=30)


def test_feedback_is_stored_replaced_and_audited(tmp_home, tiny_loaded, make_adapter) -> None:
    with serve_tiny(tiny_loaded, make_adapter, api_key=KEY) as s:
        answer = chat(s).json()
        assert answer["id"].startswith("chatcmpl-")
        first = feedback(s, {"id": answer["id"], "rating": 2, "resolved": False})
        assert first.status_code == 200, first.text
        assert first.json()["updated"] > 0
        assert first.json() | {"updated": None} == {
            "id": answer["id"], "object": "feedback", "rating": 2, "resolved": False, "escalated": None,
            "comment": None, "model": "a1@v1", "route": None, "arm": None, "updated": None}
        second = feedback(s, {"id": answer["id"], "escalated": True, "comment": "needed a human"})
        assert second.json()["rating"] is None and second.json()["escalated"] is True  # replaced
        history = s.wb.chatlog.feedback_history(answer["id"])
        assert [h["source"] for h in history] == ["api", "api"]
        row = s.wb.chatlog.get(answer["id"])
        assert row["face"] == "api" and row["variant"] == "a1@v1" and row["completion_tokens"] == 3
        metrics = httpx.get(s.url + "/metrics").text
        assert 'workbench:feedback_total{model_name="tiny-glm",outcome="escalated_yes",variant="a1@v1"} 1.0' in metrics


def test_feedback_refusals_change_nothing(tmp_home, tiny_loaded, make_adapter) -> None:
    with serve_tiny(tiny_loaded, make_adapter, api_key=KEY) as s:
        answer = chat(s).json()
        cases = [({"id": "chatcmpl-nope", "rating": 5}, 404), ({"id": answer["id"]}, 400),
                 ({"id": answer["id"], "rating": 6}, 400), ({"id": answer["id"], "rating": "good"}, 400),
                 ({"id": "../x", "rating": 3}, 400)]
        for body, status in cases:
            resp = feedback(s, body)
            assert resp.status_code == status, (body, resp.text)
            assert set(resp.json()["error"]) >= {"message", "type", "code"}
        assert feedback(s, {"id": answer["id"], "rating": 5}, headers={}).status_code == 401
        assert s.wb.chatlog.feedback_history(answer["id"]) == []


def test_route_report_counts_api_turns_and_the_guard_rolls_back(tmp_home, tiny_loaded,
                                                                 make_adapter) -> None:
    with serve_tiny(tiny_loaded, make_adapter, api_key=KEY, adapters=("a1", "a2")) as s:
        guard = {"auto": True, "metric": "resolution", "margin": 0.02, "alpha": 0.05,
                 "min_feedback": 10, "steps": [50, 100]}
        RouteStore().create("support", parse_arms("a1@v1=50,a2@v1=50"), guard=guard)
        for i in range(60):
            resp = chat(s, "support", user=f"customer-{i}")
            arm = resp.headers["x-workbench-route-arm"]
            good = arm == "a1@v1"
            assert feedback(s, {"id": resp.json()["id"], "resolved": good, "escalated": not good,
                                "rating": 5 if good else 1}).status_code == 200
        route = RouteStore().get("support")
        assert route.weights["a2@v1"] == 0.0  # rolled back without any admin call
        audit = RouteStore().audit("support")
        assert audit[-1]["action"] == "guard-rollback" and audit[-1]["who"] == "guard"
        report = httpx.get(s.v1 + "/routes/support/report", headers={"Authorization": "Bearer admin-secret-token"})
        arms = report.json()["arms"]
        assert sum(a["turns"] for a in arms.values()) == 60
        assert arms["a2@v1"]["escalation_rate"] == 1.0 and arms["a1@v1"]["escalation_rate"] == 0.0
