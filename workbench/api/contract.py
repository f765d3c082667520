"""The API's contract, complete in its OpenAPI schema (``/v1/openapi.json``).

FastAPI documents a route's 200 and, for routes with inputs, a 422 this server never sends
(validation errors leave as 400). :func:`install_contract` makes the schema say what the
code does:

* every operation lists every status it can return, each non-2xx one with the error
  envelope (:class:`ErrorResponse`): the statuses that follow from how a route is built
  (inputs: 400; the inference guard: 401; the admin guard: 401 and 403; a ``/v1`` path:
  413 from the body cap; any route: 500), plus those a route declares itself with
  ``responses=error_responses(404, ...)``, plus :data:`EXTRA_STATUSES` for routes whose
  decorators live elsewhere;
* the inference routes' and the admin routes' bearer credentials are security schemes;
* a body with a ``stream`` flag may also be answered as ``text/event-stream``.
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI, routing
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute

from workbench.api.auth import AdminRoute, InferenceRoute
from workbench.api.models import ErrorResponse

DESCRIPTIONS = {
    400: "Invalid request: a malformed body or parameter, or a refused value (the message names it).",
    401: "Missing or wrong credentials.",
    403: "Not allowed: wrong admin token, or administration is off.",
    404: "Unknown model, adapter, version, route or folder (the message lists the known ones).",
    409: "Refused by the guarded-rollout rule (the message states the rule and the numbers).",
    413: "The request body is over this endpoint's size cap.",
    499: "The client disconnected before the answer was complete (logged; no one reads it).",
    500: "Internal server error; the server log has the details.",
    503: "Busy or not serving right now; retry after the Retry-After seconds.",
}
# Statuses of routes declared in files that do not import this module (by method and path).
EXTRA_STATUSES: dict[tuple[str, str], tuple[int, ...]] = {
    ("POST", "/v1/chat/completions"): (404, 499, 503),
    ("POST", "/v1/completions"): (404, 499, 503),
}
SECURITY_SCHEMES = {
    "apiKey": {"type": "http", "scheme": "bearer",
               "description": "The inference API key (--api-key or WORKBENCH_API_KEY); the "
                              "admin token opens the inference routes too."},
    "adminToken": {"type": "http", "scheme": "bearer",
                   "description": "The admin token (WORKBENCH_ADMIN_TOKEN)."},
}
ENVELOPE_REF = {"$ref": "#/components/schemas/ErrorResponse"}
SSE = {"text/event-stream": {"schema": {
    "type": "string",
    "description": "Server-sent events: one JSON chunk per `data:` line, then `data: [DONE]`."}}}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """A route's ``responses=``: each status with the error envelope and its description."""
    return {s: {"model": ErrorResponse, "description": DESCRIPTIONS[s]} for s in statuses}


def api_routes(app: FastAPI) -> Iterator[tuple[APIRoute, Any]]:
    """(route as declared, route as served) for each API route of ``app``.

    FastAPI 0.16x includes routers lazily (``app.routes`` holds the included routers and
    ``iter_route_contexts`` yields each route as served); earlier versions copy the routes.
    """
    contexts = getattr(routing, "iter_route_contexts", None)
    if contexts is None:
        yield from ((r, r) for r in app.routes if isinstance(r, APIRoute))
        return
    for ctx in contexts(app.routes):
        if isinstance(ctx.original_route, APIRoute):
            yield ctx.original_route, ctx


def route_statuses(route: APIRoute, served: Any = None) -> set[int]:
    """The error statuses that follow from how ``route`` is built (see the module doc)."""
    served = served if served is not None else route
    statuses = {500}
    dep = served.dependant
    if dep.body_params or dep.query_params or dep.path_params or dep.header_params:
        statuses.add(400)
    if isinstance(route, InferenceRoute):
        statuses.add(401)
    if isinstance(route, AdminRoute):
        statuses |= {401, 403}
    if served.path.startswith("/v1/"):
        statuses.add(413)
    for method in served.methods:
        statuses |= set(EXTRA_STATUSES.get((method, served.path), ()))
    return statuses


def _streams(route: Any) -> bool:
    body = route.body_field
    model = body.field_info.annotation if body is not None else None
    return "stream" in (getattr(model, "model_fields", None) or {})


def _complete(operation: dict, route: APIRoute, served: Any) -> None:
    responses = operation.setdefault("responses", {})
    if "422" not in {str(s) for s in served.responses}:
        responses.pop("422", None)  # validation errors leave as 400
    for status in sorted(route_statuses(route, served)):
        responses.setdefault(str(status), {
            "description": DESCRIPTIONS[status],
            "content": {"application/json": {"schema": ENVELOPE_REF}}})
    for response in responses.values():
        # A route answering text/plain gets its declared errors filed under text/plain too;
        # the envelope always leaves as JSON.
        content = response.get("content", {})
        if any(body.get("schema") == ENVELOPE_REF for body in content.values()):
            response["content"] = {"application/json": {"schema": ENVELOPE_REF}}
    if _streams(served) and "200" in responses:
        responses["200"].setdefault("content", {}).update(SSE)
    if isinstance(route, AdminRoute):
        operation["security"] = [{"adminToken": []}]
    elif isinstance(route, InferenceRoute):
        operation["security"] = [{"apiKey": []}, {"adminToken": []}]


def _drop_unused(schema: dict) -> None:
    """FastAPI's validation-error models, once nothing points at them any more."""
    schemas = schema.get("components", {}).get("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):  # the first refers to the second
        others = {k: v for k, v in schemas.items() if k != name}
        if name in schemas and f"#/components/schemas/{name}\"" not in json.dumps(
                [schema["paths"], others]):
            del schemas[name]


def build_schema(app: FastAPI) -> dict:
    """The app's OpenAPI document, completed as the module doc describes."""
    schema = get_openapi(title=app.title, version=app.version, openapi_version=app.openapi_version,
                         description=app.description, routes=app.routes)
    components = schema.setdefault("components", {})
    envelope = ErrorResponse.model_json_schema(ref_template="#/components/schemas/{model}")
    models = components.setdefault("schemas", {})
    for name, model in {**envelope.pop("$defs", {}), "ErrorResponse": envelope}.items():
        models.setdefault(name, model)  # FastAPI adds them when a route names the model
    components["securitySchemes"] = SECURITY_SCHEMES
    for route, served in api_routes(app):
        for method in served.methods if served.include_in_schema else ():
            operation = schema["paths"].get(served.path_format, {}).get(method.lower())
            if operation is not None:
                _complete(operation, route, served)
    _drop_unused(schema)
    return schema


def install_contract(app: FastAPI) -> None:
    """Serve :func:`build_schema`'s document at the app's openapi_url (built once, on first use)."""

    def openapi() -> dict:
        if app.openapi_schema is None:
            app.openapi_schema = build_schema(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
