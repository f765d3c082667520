"""The routes admin API: auth, the error envelope, create/change/report/promote/rollback."""
from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from routehelp import seed_turns

from workbench.api import routes_router
from workbench.api.app import ROUTERS, create_api
from workbench.api.auth import APISettings
from workbench.routing.routes import token_id
from workbench.routing.store import RouteStore

ADMIN = "routes-admin-token"
AUTH = {"Authorization": f"Bearer {ADMIN}"}


@pytest.fixture
def client(workbench) -> Iterator[TestClient]:
    workbench.admin_token = ADMIN
    assert routes_router.router in ROUTERS
    app = create_api(workbench, APISettings(api_key=None))
    with TestClient(app) as c:
        yield c


def _create(client: TestClient, **extra) -> dict:
    body = {"name": "support", "arms": [{"ref": "a1@v1", "weight": 90}, {"ref": "a2", "weight": 10}],
            **extra}
    resp = client.post("/v1/routes", json=body, headers=AUTH)
    assert resp.status_code == 200, resp.text
    return resp.json()


def test_needs_the_admin_token(client: TestClient) -> None:
    assert client.get("/v1/routes").status_code == 401
    resp = client.get("/v1/routes", headers={"Authorization": "Bearer nope"})
    assert resp.status_code == 403 and resp.json()["error"]["code"] == 403


def test_create_change_and_audit_with_token_id(client: TestClient) -> None:
    route = _create(client)
    assert route["shares"] == {"a1@v1": 0.9, "a2": 0.1} and route["incumbent"] == "a1@v1"
    resp = client.put("/v1/routes/support", headers=AUTH,
                      json={"arms": [{"ref": "a1@v1", "weight": 50}, {"ref": "a2", "weight": 50}]})
    assert resp.status_code == 200 and resp.json()["shares"]["a2"] == 0.5
    listed = client.get("/v1/routes", headers=AUTH).json()["data"]
    assert [r["name"] for r in listed] == ["support"]
    audit = RouteStore().audit("support")
    assert [e["who"] for e in audit] == [token_id(ADMIN)] * 2 and ADMIN not in str(audit)


def test_refusals_use_the_error_envelope_and_change_nothing(client: TestClient) -> None:
    _create(client)
    before = client.get("/v1/routes/support", headers=AUTH).json()
    cases = [
        (client.put, "/v1/routes/support", {"arms": [{"ref": "a1@v1", "weight": -5}]}, 400),
        (client.put, "/v1/routes/support", {"arms": [{"ref": "a1@v1", "weight": 0}]}, 400),
        (client.put, "/v1/routes/support", {"arms": [{"ref": "zz@v9", "weight": 1}]}, 404),
        (client.put, "/v1/routes/nope", {"margin": 0.1}, 404),
        (client.post, "/v1/routes", {"name": "support", "arms": [{"ref": "a1", "weight": 1}]}, 400),
        (client.post, "/v1/routes/support/promote", {}, 409),
        (client.post, "/v1/routes/support/promote", {"candidate": "a9"}, 404),
    ]
    for call, path, body, status in cases:
        resp = call(path, json=body, headers=AUTH)
        err = resp.json()["error"]
        assert resp.status_code == status and err["code"] == status and err["message"], (path, body)
    assert client.get("/v1/routes/support", headers=AUTH).json() == before


def test_report_promote_and_rollback(client: TestClient, workbench) -> None:
    _create(client)
    seed_turns(workbench.chatlog, "a1@v1", 200, 0.5, seed=1, route="support")
    seed_turns(workbench.chatlog, "a2", 200, 0.3, seed=2, route="support")
    rep = client.get("/v1/routes/support/report", headers=AUTH).json()
    assert rep["arms"]["a1@v1"]["turns"] == 200 and not rep["promote"]["a2"]["allowed"]
    refused = client.post("/v1/routes/support/promote", headers=AUTH)
    assert refused.status_code == 409 and "anytime-valid interval" in refused.json()["error"]["message"]
    back = client.post("/v1/routes/support/rollback", headers=AUTH).json()
    assert back["shares"] == {"a1@v1": 1.0, "a2": 0.0}
    seed_turns(workbench.chatlog, "a2", 1500, 0.8, seed=3, route="support")
    seed_turns(workbench.chatlog, "a1@v1", 1300, 0.5, seed=4, route="support")
    promoted = client.post("/v1/routes/support/promote", json={"candidate": "a2"}, headers=AUTH)
    assert promoted.status_code == 200 and promoted.json()["incumbent"] == "a2"


def test_chat_completion_through_a_route_names_its_arm_and_sticks(client: TestClient) -> None:
    _create(client)
    seen: dict[str, set[str]] = {}
    for user in [f"u{i}" for i in range(12)] * 2:
        resp = client.post("/v1/chat/completions", json={
            "model": "support", "user": user, "max_tokens": 2,
            "messages": [{"role": "user", "content": "Where is my order?"}]})
        assert resp.status_code == 200, resp.text
        arm = resp.headers["x-workbench-route-arm"]
        assert arm in ("a1@v1", "a2") and resp.json()["model"] == {"a1@v1": "a1@v1", "a2": "a2@v1"}[arm]
        assert resp.headers["x-workbench-adapter"] == resp.json()["model"]
        seen.setdefault(user, set()).add(arm)
    assert all(len(arms) == 1 for arms in seen.values()), seen
    # No user field: the session header decides, and sticks too.
    arms = {client.post("/v1/chat/completions", headers={"x-session-id": "s-1"}, json={
        "model": "support", "max_tokens": 1,
        "messages": [{"role": "user", "content": "Hi"}]}).headers["x-workbench-route-arm"]
        for _ in range(3)}
    assert len(arms) == 1
    plain = client.post("/v1/chat/completions", json={
        "model": "a1", "max_tokens": 1, "messages": [{"role": "user", "content": "Hi"}]})
    assert plain.status_code == 200 and "x-workbench-route-arm" not in plain.headers
