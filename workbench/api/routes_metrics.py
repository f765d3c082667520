"""``/metrics`` (Prometheus text format, vLLM's names) and ``/health``; no credentials needed,
as with vLLM, since they carry counts and adapter names but no traffic."""
from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import BaseModel

router = APIRouter()


class Health(BaseModel):
    """``/health``'s body, with 200 while the engine serves and 503 once it has stopped."""

    status: Literal["ok", "engine stopped"]
    model: str


@router.get("/metrics", response_class=PlainTextResponse,
            responses={200: {"description": "Prometheus text exposition format."}})
async def metrics(request: Request) -> Response:
    return Response(request.app.state.wb.telemetry.exposition(), media_type=CONTENT_TYPE_LATEST)


@router.get("/health", response_model=Health,
            responses={503: {"model": Health, "description": "The engine has stopped."}})
async def health(request: Request) -> JSONResponse:
    wb = request.app.state.wb
    ok = wb.engine.alive
    return JSONResponse({"status": "ok" if ok else "engine stopped", "model": wb.loaded.model_id},
                        status_code=200 if ok else 503)
