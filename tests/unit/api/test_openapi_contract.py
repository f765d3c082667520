"""The API's contract is complete in ``/v1/openapi.json``: every operation lists the error
statuses it can return with the error envelope, and the constraints the server enforces
(name patterns, lengths, the known regions and languages) are in the schema; over-long
names and paths are refused with a 400 envelope, never a 500."""
from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Iterator

import httpx
import pytest
from apihelp import ADMIN, serve_tiny
from fastapi.testclient import TestClient

from workbench.adapters.registry import check_safe_name
from workbench.api.app import create_api
from workbench.api.auth import APISettings
from workbench.api.contract import ENVELOPE_REF
from workbench.domain.langs import LANGUAGES
from workbench.domain.policy import load_policies
from workbench.errors import AdapterError

AUTH = {"Authorization": f"Bearer {ADMIN}"}
LONG = "x" * 2000


@pytest.fixture(scope="module")
def schema() -> dict:
    """The schema as served; building it needs no model (the Workbench is only used by routes)."""
    with TestClient(create_api(None, APISettings(api_key="k"))) as client:  # type: ignore[arg-type]
        r = client.get("/v1/openapi.json")
    assert r.status_code == 200
    return r.json()


def operations(schema: dict) -> Iterator[tuple[str, str, dict]]:
    for path, item in schema["paths"].items():
        for method, op in item.items():
            yield method.upper(), path, op


def test_every_operation_declares_its_error_statuses_with_the_envelope(schema: dict) -> None:
    assert schema["components"]["schemas"]["ErrorResponse"]["properties"]["error"]
    for method, path, op in operations(schema):
        label, statuses = f"{method} {path}", set(op["responses"])
        assert "500" in statuses and "422" not in statuses, label  # validation errors are 400s
        if op.get("parameters") or op.get("requestBody"):
            assert "400" in statuses, label
        if path.startswith("/v1/"):
            assert "413" in statuses, label  # the body cap covers every /v1 route
        schemes = {name for alt in op.get("security", []) for name in alt}
        if "adminToken" in schemes and "apiKey" not in schemes:
            assert {"401", "403"} <= statuses, label
        elif schemes:
            assert "401" in statuses, label
        for status, response in op["responses"].items():
            if status.startswith("2") or (path, status) == ("/health", "503"):
                continue  # /health answers 503 with its own body, as monitors expect
            assert response["content"] == {"application/json": {"schema": ENVELOPE_REF}}, (label, status)


def test_statuses_of_the_routes_that_return_more(schema: dict) -> None:
    paths = schema["paths"]
    for path in ("/v1/chat/completions", "/v1/completions"):
        responses = paths[path]["post"]["responses"]
        assert {"400", "401", "404", "413", "499", "500", "503"} <= set(responses), path
        assert {"application/json", "text/event-stream"} <= set(responses["200"]["content"])
    assert {"401", "403", "404", "503"} <= set(paths["/v1/load_lora_adapter"]["post"]["responses"])
    assert "text/plain" in paths["/v1/load_lora_adapter"]["post"]["responses"]["200"]["content"]
    assert "409" in paths["/v1/routes/{name}/promote"]["post"]["responses"]
    assert "404" in paths["/v1/routes/{name}"]["get"]["responses"]
    assert set(schema["components"]["securitySchemes"]) == {"apiKey", "adminToken"}
    upload = paths["/v1/upload_lora_adapter"]["post"]
    assert "application/zip" in upload["requestBody"]["content"]


def _string_schema(prop: dict) -> dict:
    """The string branch of an optional (``anyOf``) property, or the property itself."""
    return next((b for b in prop.get("anyOf", [prop]) if b.get("type") == "string"), prop)


def test_region_and_lang_are_enums_of_the_known_codes(schema: dict) -> None:
    chat = schema["components"]["schemas"]["ChatCompletionRequest"]["properties"]
    regions = set(_string_schema(chat["region"])["enum"])
    assert {r.upper() for r in regions} == set(load_policies())
    assert set(load_policies()) <= regions  # upper case listed; lower case accepted too
    assert set(_string_schema(chat["lang"])["enum"]) == set(LANGUAGES)


def test_names_and_paths_carry_their_server_side_limits(schema: dict) -> None:
    models = schema["components"]["schemas"]
    load = models["LoadLoraRequest"]["properties"]
    assert load["lora_name"]["maxLength"] == 129 and load["lora_name"]["pattern"]
    assert load["lora_path"]["maxLength"] == 1024
    version = _string_schema(models["RollbackLoraRequest"]["properties"]["version"])
    assert version["maxLength"] == 64
    upload = {p["name"]: _string_schema(p["schema"])
              for p in schema["paths"]["/v1/upload_lora_adapter"]["post"]["parameters"]}
    assert upload["name"]["maxLength"] == upload["version"]["maxLength"] == 64
    route = next(p for p in schema["paths"]["/v1/routes/{name}"]["get"]["parameters"]
                 if p["name"] == "name")
    assert route["schema"]["maxLength"] == 64 and models["RouteCreate"]["properties"]["name"]["pattern"]
    # The schema's pattern says what the registry says.
    pattern = re.compile(version["pattern"])
    for name in ("v1", "cs-support", "a.b_c-1", "x" * 64, "a.", "a..b", ".a", "-a", "a/b", "a@b",
                 "", "x" * 65, "é"):
        try:
            check_safe_name("version", name)
            ok = True
        except AdapterError:
            ok = False
        assert ok == bool(pattern.fullmatch(name) and len(name) <= version["maxLength"]), name


def test_a_405_names_every_method_of_the_path() -> None:
    with TestClient(create_api(None, APISettings())) as client:  # type: ignore[arg-type]
        r = client.request("PATCH", "/v1/routes")
    assert r.status_code == 405 and r.json()["error"]["code"] == 405
    assert {m.strip() for m in r.headers["allow"].split(",")} >= {"GET", "POST"}


def _zip_with_member(name: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(name, "{}")
    return buf.getvalue()


def test_over_long_names_and_paths_are_400_envelopes(tmp_home, tiny_loaded, make_adapter) -> None:
    refusals = [
        ("/load_lora_adapter", {"lora_name": "a1", "lora_path": LONG}, "lora_path"),
        ("/load_lora_adapter", {"lora_name": "a1", "lora_path": "a1/" + "y" * 300}, "lora_path"),
        ("/load_lora_adapter", {"lora_name": "a1", "lora_path": "~nobody-here/a1"}, "lora_path"),
        ("/load_lora_adapter", {"lora_name": LONG, "lora_path": "a1/v1"}, "lora_name"),
        ("/unload_lora_adapter", {"lora_name": LONG}, "lora_name"),
        ("/rollback_lora_adapter", {"lora_name": "a1", "version": LONG}, "version"),
        ("/routes", {"name": LONG, "arms": [{"ref": "base", "weight": 1}]}, "name"),
    ]
    with serve_tiny(tiny_loaded, make_adapter) as s:
        before = dict(s.wb.served)
        for route, body, param in refusals:
            r = httpx.post(s.v1 + route, json=body, headers=AUTH, timeout=60)
            assert r.status_code == 400, (route, param, r.text[:300])
            error = r.json()["error"]
            assert error["code"] == 400 and error["type"] == "invalid_request_error"
            assert param in (error["param"] or "") + error["message"], error
            assert len(error["message"]) < 600  # the 2,000 characters are not echoed back
        for method, url in (("GET", f"/routes/{LONG}"), ("DELETE", f"/routes/{LONG}")):
            assert httpx.request(method, s.v1 + url, headers=AUTH).status_code == 400
        upload = httpx.post(s.v1 + "/upload_lora_adapter", params={"name": LONG},
                            content=b"PK", headers=AUTH)
        assert upload.status_code == 400 and upload.json()["error"]["param"] == "query.name"
        member = _zip_with_member("z" * 300 + "/adapter_config.json")
        r = httpx.post(s.v1 + "/upload_lora_adapter", params={"name": "zz"}, content=member,
                       headers=AUTH)
        assert r.status_code == 400 and "over 255 bytes" in r.json()["error"]["message"], r.text
        assert dict(s.wb.served) == before and "zz" not in s.wb.registry.names()
