"""Adapter administration, vLLM-shaped: load, unload, plus rollback and upload.

Every route needs the admin token and goes through the same validation and lifecycle as the
Adapters tab (``workbench.service.lifecycle``, ``upload``). A ``lora_path`` must lie inside
the adapters registry or a folder named in ``WORKBENCH_LORA_ROOTS``; a folder outside the
registry is imported as a new immutable version first, and an existing ``name@version`` is
never replaced by another folder's files.

Status codes follow vLLM: 200 with a plain-text "Success: ..." line, 400 for a refused
adapter or bad input (an over-long name or path included), 404 for an adapter or folder that
does not exist, 503 while the adapter is being swapped; ``/v1/openapi.json`` lists them all.
"""
from __future__ import annotations

import logging
import shutil
from pathlib import Path

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from starlette.concurrency import run_in_threadpool

from workbench.service import lifecycle
from workbench.adapters.registry import CONFIG_FILE, parse_ref
from workbench.adapters.upload import UploadLimits, import_adapter
from workbench.api.auth import AdminRoute, APISettings
from workbench.api.contract import error_responses
from workbench.api.errors import APIError
from workbench.api.models import (NAME_MAX, NAME_PATTERN, LoadLoraRequest, RollbackLoraRequest,
                                  UnloadLoraRequest)
from workbench.errors import AdapterError
from workbench.service.workbench import Workbench

log = logging.getLogger("workbench.api")
router = APIRouter(route_class=AdminRoute)
# Uploads go here before import_adapter checks them (inside the registry's staging area).
UPLOAD_PATH = "/v1/upload_lora_adapter"
# What a filesystem takes: one folder name (NAME_MAX), the whole path (PATH_MAX less its NUL).
NAME_MAX_BYTES = 255
PATH_MAX_BYTES = 4095
ZIP_BODY = {"requestBody": {"required": True, "description": "The zipped adapter folder.",
                            "content": {"application/zip": {"schema": {"type": "string",
                                                                       "format": "binary"}}}}}


def _inside(path: Path, root: Path) -> bool:
    root = root.resolve()
    return path == root or root in path.parents


def shown(raw: str, width: int = 80) -> str:
    """``raw`` quoted for a message, its middle cut when it is long."""
    return repr(raw if len(raw) <= width else f"{raw[:width - 20]}…{raw[-15:]}")


def check_path_lengths(raw: str, param: str = "lora_path") -> None:
    """Refuse (400) a path no filesystem could hold, before any filesystem call sees it."""
    data = raw.encode("utf-8", "surrogatepass")
    longest = max((len(part) for part in data.split(b"/")), default=0)
    if len(data) > PATH_MAX_BYTES or longest > NAME_MAX_BYTES:
        raise APIError(400, f"{param} {shown(raw)} is too long: a path holds at most "
                       f"{PATH_MAX_BYTES:,} bytes and each folder name in it at most "
                       f"{NAME_MAX_BYTES} bytes (it has {len(data):,}, the longest name "
                       f"{longest:,}).", param)


def resolve_lora_path(wb: Workbench, settings: APISettings, raw: str) -> Path:
    """The real folder ``raw`` names, refused (400) when it could reach outside allowed roots."""
    if "\x00" in raw:
        raise APIError(400, "lora_path contains a NUL byte.", "lora_path")
    check_path_lengths(raw)
    try:
        return _existing_folder(wb, settings, raw)
    except (OSError, RuntimeError, ValueError) as exc:  # e.g. "~nobody/x", ENAMETOOLONG
        reason = getattr(exc, "strerror", None) or str(exc)
        raise APIError(400, f"lora_path {shown(raw)} cannot be used: {reason}.", "lora_path") from exc


def _existing_folder(wb: Workbench, settings: APISettings, raw: str) -> Path:
    given = Path(raw).expanduser()
    path = (given if given.is_absolute() else wb.registry.root / given).resolve()
    roots = [wb.registry.root, *settings.lora_roots]
    if ".." in given.parts or not any(_inside(path, r) for r in roots):
        allowed = ", ".join(str(r) for r in roots)
        raise APIError(400, f"lora_path {shown(raw)} is outside the folders adapters are loaded "
                       f"from ({allowed}); set WORKBENCH_LORA_ROOTS to allow another folder.",
                       "lora_path")
    if not path.exists():
        raise APIError(404, f"No adapter folder at {shown(raw)}.", "lora_path")
    if not path.is_dir() or not (path / CONFIG_FILE).is_file():
        raise APIError(400, f"{shown(raw)} is not a LoRA adapter folder (it has no {CONFIG_FILE}).",
                       "lora_path")
    return path


def _registered_ref(wb: Workbench, path: Path) -> str | None:
    root = wb.registry.root.resolve()
    if path.parent.parent == root:
        return f"{path.parent.name}@{path.name}"
    return None


def load_from_path(wb: Workbench, settings: APISettings, lora_name: str, raw_path: str) -> str:
    """Serve the adapter at ``raw_path`` under ``lora_name``; returns the ref now served."""
    name, version = parse_ref(lora_name)
    path = resolve_lora_path(wb, settings, raw_path)
    ref = _registered_ref(wb, path)
    if ref is not None:
        folder_name, folder_version = ref.split("@")
        if folder_name != name or (version and version != folder_version):
            raise APIError(400, f"lora_name {lora_name!r} does not match the registered version at "
                           f"that path ({ref}).", "lora_name")
    elif version and wb.registry.exists(name, version):
        raise APIError(400, f"{name}@{version} is already registered from another folder; versions "
                       f"are immutable, so load this one as {name}@{wb.registry.next_version(name)}.",
                       "lora_name")
    else:
        ref = import_adapter(wb.registry, path, wb.validate_adapter, name=name, version=version).ref
    served = wb.served.get(name)
    if served is not None and served.ref == ref and name in wb.engine.adapters:
        raise APIError(400, f"The lora adapter '{name}' has already been loaded ({ref}).", "lora_name")
    return lifecycle.load(wb, ref).message


@router.post("/v1/load_lora_adapter", response_class=PlainTextResponse,
             responses=error_responses(404, 503))
async def load_lora_adapter(body: LoadLoraRequest, request: Request) -> PlainTextResponse:
    wb = request.app.state.wb
    message = await run_in_threadpool(load_from_path, wb, request.app.state.settings,
                                      body.lora_name, body.lora_path)
    name = body.lora_name.partition("@")[0]
    log.info("%s by %s", message, request.state.caller)
    return PlainTextResponse(f"Success: LoRA adapter '{name}' added successfully.",
                             headers={"x-workbench-adapter": wb.served[name].ref})


@router.post("/v1/unload_lora_adapter", response_class=PlainTextResponse,
             responses=error_responses(404, 503))
async def unload_lora_adapter(body: UnloadLoraRequest, request: Request) -> PlainTextResponse:
    wb = request.app.state.wb
    name = body.lora_name.partition("@")[0]
    if name not in wb.engine.adapters:
        raise APIError(404, f"The lora adapter '{name}' cannot be found.", "lora_name")
    result = await run_in_threadpool(lifecycle.unload, wb, name, True, 60.0)
    log.info("%s by %s", result.message, request.state.caller)
    return PlainTextResponse(f"Success: LoRA adapter '{name}' removed successfully.")


@router.post("/v1/rollback_lora_adapter", responses=error_responses(404, 503))
async def rollback_lora_adapter(body: RollbackLoraRequest, request: Request) -> JSONResponse:
    wb = request.app.state.wb
    name = body.lora_name.partition("@")[0]
    result = await run_in_threadpool(lifecycle.rollback, wb, name, body.version)
    log.info("%s by %s", result.message, request.state.caller)
    return JSONResponse({"message": result.message, "adapter": f"{name}@{result.after}"},
                        headers={"x-workbench-adapter": f"{name}@{result.after}"})


@router.post(UPLOAD_PATH, responses=error_responses(503), openapi_extra=ZIP_BODY)
async def upload_lora_adapter(request: Request,
                              name: str = Query(..., min_length=1, max_length=NAME_MAX,
                                                pattern=NAME_PATTERN),
                              version: str | None = Query(None, min_length=1, max_length=NAME_MAX,
                                                          pattern=NAME_PATTERN),
                              load: bool = Query(False)) -> JSONResponse:
    """Register a zipped adapter folder sent as the raw body (``application/zip``)."""
    wb = request.app.state.wb
    settings: APISettings = request.app.state.settings
    staging = wb.registry.staging_dir("http-")
    try:
        archive = staging / "upload.zip"
        with archive.open("wb") as fh:
            async for chunk in request.stream():
                fh.write(chunk)
        if archive.stat().st_size == 0:
            raise APIError(400, "The upload is empty; send the zip as the request body.")
        limits = UploadLimits(max_archive_bytes=settings.max_upload_bytes)
        registered = await run_in_threadpool(import_adapter, wb.registry, archive, wb.validate_adapter,
                                             name, version, limits)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    message = f"Registered {registered.ref}."
    if load:
        try:
            message += " " + (await run_in_threadpool(lifecycle.load, wb, registered.ref)).message
        except AdapterError as exc:
            raise APIError(400, f"Registered {registered.ref}, but loading it failed: {exc.message}") from exc
    log.info("%s by %s", message, request.state.caller)
    return JSONResponse({"message": message, "adapter": registered.ref})


@router.get("/v1/adapters")
async def list_adapters(request: Request) -> JSONResponse:
    wb = request.app.state.wb
    rows = lifecycle.adapter_rows(wb.registry, wb)
    return JSONResponse({"data": [dict(zip(lifecycle.AdapterRow.HEADERS, r.cells())) for r in rows]})
