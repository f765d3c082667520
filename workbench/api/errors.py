"""User-facing errors at the HTTP edge, in the OpenAI/vLLM envelope.

Every refusal leaves as ``{"error": {"message", "type", "param", "code"}}`` with ``code`` the
HTTP status (as vLLM sends it), and one log line; a traceback never reaches a client.
"""
from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from workbench.api.contract import api_routes
from workbench.api.models import ErrorInfo, ErrorResponse
from workbench.errors import (AdapterError, AuthError, BusyError, InputError, UnknownNameError,
                              WorkbenchError)
from workbench.store.db import StoreUnavailable

log = logging.getLogger("workbench.api")
RETRY_AFTER_S = 1

TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
         404: "not_found_error", 405: "invalid_request_error", 413: "request_too_large",
         500: "server_error", 503: "service_unavailable_error"}


class APIError(Exception):
    """A refusal with its HTTP status; raised by routes, rendered by the handlers below."""

    def __init__(self, status: int, message: str, param: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.param = status, message, param
        self.headers = headers or {}


def error_body(status: int, message: str, param: str | None = None) -> dict:
    info = ErrorInfo(message=message, type=TYPES.get(status, "invalid_request_error"), param=param,
                     code=status)
    return ErrorResponse(error=info).model_dump()


def error_response(status: int, message: str, param: str | None = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error_body(status, message, param), status_code=status, headers=headers)


def from_workbench(exc: WorkbenchError, param: str | None = None) -> APIError:
    """The status a workbench error maps to (unknown names 404, busy 503, bad input 400)."""
    param = param or exc.param
    if isinstance(exc, AuthError):
        return APIError(exc.status, exc.message)
    if isinstance(exc, (BusyError, StoreUnavailable)):  # try again shortly
        return APIError(503, exc.message, headers={"Retry-After": str(RETRY_AFTER_S)})
    if isinstance(exc, UnknownNameError):
        if exc.kind in ("model", "adapter", "loaded adapter") or exc.kind.startswith("version of"):
            return APIError(404, exc.message, param or "model")
        return APIError(400, exc.message, param)
    if isinstance(exc, (InputError, AdapterError)) or type(exc) is not WorkbenchError:
        return APIError(400, exc.message, param)
    return APIError(503, exc.message, headers={"Retry-After": str(RETRY_AFTER_S)})  # engine state


def refuse(request: Request, err: APIError) -> JSONResponse:
    log.warning("refused %s %s: %d %s", request.method, request.url.path, err.status, err.message)
    return error_response(err.status, err.message, err.param, err.headers)


def _validation_message(exc: RequestValidationError) -> tuple[str, str | None]:
    errors = exc.errors()
    if not errors:
        return "The request body is invalid.", None
    first = errors[0]
    loc = [str(p) for p in first.get("loc", ()) if p != "body"]
    if first.get("type") == "json_invalid":
        detail = first.get("ctx", {}).get("error", "parse error")
        return f"The request body is not valid JSON ({detail}).", None
    param = ".".join(loc) or None
    msg = first.get("msg", "invalid value")
    if first.get("type") == "value_error":  # a validator's own sentence, without pydantic's prefix
        msg = msg.removeprefix("Value error, ")
    more = f" (and {len(errors) - 1} more problems)" if len(errors) > 1 else ""
    return (f"{param}: {msg}" if param else msg) + more, param


def allowed_methods(app: FastAPI, path: str) -> list[str]:
    """Every method some route of ``app`` serves at ``path`` (for a 405's Allow header)."""
    methods = {m for _, served in api_routes(app) if served.path_regex.match(path)
               for m in served.methods or ()}
    order = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
    return sorted(methods, key=lambda m: (order.index(m) if m in order else len(order), m))


def install_handlers(app: FastAPI) -> None:
    @app.exception_handler(APIError)
    async def _api(request: Request, exc: APIError) -> JSONResponse:
        return refuse(request, exc)

    @app.exception_handler(WorkbenchError)
    async def _wb(request: Request, exc: WorkbenchError) -> JSONResponse:
        return refuse(request, from_workbench(exc))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        message, param = _validation_message(exc)
        return refuse(request, APIError(400, message, param))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else "Request refused."
        headers = dict(exc.headers or {})
        if exc.status_code == 404 and message == "Not Found":
            message = f"No route {request.method} {request.url.path}."
        if exc.status_code == 405:
            # Starlette names only the first route of the path; a client needs them all.
            allowed = allowed_methods(app, request.url.path) or [headers.get("Allow", "")]
            headers["Allow"] = ", ".join(allowed)
            message = f"{request.method} is not allowed on {request.url.path}; use {headers['Allow']}."
        return refuse(request, APIError(exc.status_code, message, headers=headers))

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> JSONResponse:
        # Starlette re-raises after sending this; CatchAll (middleware) logs it once.
        return error_response(500, "Internal server error; the server log has the details.")
