"""``/metrics`` (Prometheus text format, vLLM's names) and ``/health``; no credentials needed,
as with vLLM, since they carry counts and adapter names but no traffic."""
from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST

router = APIRouter()


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    return Response(request.app.state.wb.telemetry.exposition(), media_type=CONTENT_TYPE_LATEST)


@router.get("/health")
async def health(request: Request) -> JSONResponse:
    wb = request.app.state.wb
    ok = wb.engine.alive
    return JSONResponse({"status": "ok" if ok else "engine stopped", "model": wb.loaded.model_id},
                        status_code=200 if ok else 503)
