"""Who may call what: the inference API key, the admin token, and the bind-address rule.

* Inference routes (``/v1/chat/completions``, ``/v1/completions``, ``/v1/models``) need
  ``Authorization: Bearer <api key>`` when an API key is set (``--api-key`` or
  ``WORKBENCH_API_KEY``); the admin token opens them too.
* Adapter administration needs the admin token (``WORKBENCH_ADMIN_TOKEN``) and is off when
  none is set; an API key never opens it (unlike vLLM, where ``--api-key`` guards both).
* Serving on a non-loopback address needs both, or the server refuses to start.
"""
from __future__ import annotations

import hmac
import ipaddress
import os
from dataclasses import dataclass, field
from pathlib import Path

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute

from workbench.errors import AuthError, WorkbenchError

KiB = 1 << 10


def _env_roots() -> tuple[Path, ...]:
    raw = os.environ.get("WORKBENCH_LORA_ROOTS", "")
    return tuple(Path(p).expanduser() for p in raw.split(os.pathsep) if p.strip())


@dataclass(frozen=True)
class APISettings:
    """How the API is guarded and bounded; passed whole to :func:`create_api`."""

    # Bearer key for inference routes (None: open, which only loopback binding allows).
    api_key: str | None = field(default_factory=lambda: os.environ.get("WORKBENCH_API_KEY") or None,
                                repr=False)
    # Largest request body on /v1 routes, except uploads.
    max_body_bytes: int = 256 * KiB
    # Largest adapter zip accepted by /v1/upload_lora_adapter.
    max_upload_bytes: int = 200 << 20
    # max_tokens when a request gives none.
    default_max_tokens: int = 256
    # Folders (besides the registry) a load_lora_adapter lora_path may point into.
    lora_roots: tuple[Path, ...] = field(default_factory=_env_roots)


def is_loopback(host: str) -> bool:
    if host in ("localhost", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(host: str, settings: APISettings, admin_token: str | None) -> None:
    """Refuse to serve beyond this machine without both an API key and an admin token."""
    if is_loopback(host):
        return
    missing = [what for what, val in (("an API key (--api-key or WORKBENCH_API_KEY)", settings.api_key),
                                      ("an admin token (WORKBENCH_ADMIN_TOKEN)", admin_token)) if not val]
    if missing:
        raise WorkbenchError(
            f"Refusing to listen on {host}: anyone who can reach it could use the model and manage "
            f"adapters. Set {' and '.join(missing)}, or bind to 127.0.0.1.")


def bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def require_api_key(request: Request) -> None:
    """FastAPI dependency of the inference routes."""
    settings: APISettings = request.app.state.settings
    if not settings.api_key:
        return
    token = bearer(request)
    if token is None:
        raise AuthError("Missing API key: send it as 'Authorization: Bearer <key>'.", 401)
    admin = request.app.state.wb.admin_token
    if not (_same(token, settings.api_key) or (admin and _same(token, admin))):
        raise AuthError("Incorrect API key provided.", 401)


def require_admin(request: Request) -> str:
    """Check the admin token; returns the token's id for the log."""
    return request.app.state.wb.check_admin(bearer(request))


def _guarded_route(check: Callable[[Request], object]) -> type[APIRoute]:
    """A route class that checks credentials before the body is read or validated, so an
    unauthenticated caller learns nothing about what its body would have done."""

    class Guarded(APIRoute):
        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            handler = super().get_route_handler()

            async def guarded(request: Request) -> Response:
                request.state.caller = check(request)
                return await handler(request)

            return guarded

    return Guarded


InferenceRoute = _guarded_route(require_api_key)
AdminRoute = _guarded_route(require_admin)
