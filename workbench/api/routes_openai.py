"""``/v1/chat/completions``, ``/v1/completions`` and ``/v1/models``, as OpenAI clients expect.

Every response names the variant that served it: the ``model`` field and the
``x-workbench-adapter`` header carry ``name@version`` (the base's id for the base), fixed
when the request was admitted.
"""
from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from workbench.api.auth import InferenceRoute
from workbench.api.errors import APIError, error_body
from workbench.api.generation import Job, PieceStream, submit_chat, submit_completion
from workbench.api.models import (AssistantMessage, ChatChoice, ChatCompletion, ChatCompletionRequest,
                                  CompletionChoice, CompletionRequest, ModelCard, ModelList,
                                  TextCompletion)
from workbench.service import Workbench

router = APIRouter(route_class=InferenceRoute)


def _wb(request: Request) -> Workbench:
    return request.app.state.wb


def _sticky_user(body: ChatCompletionRequest | CompletionRequest, request: Request) -> None:
    """A/B routes assign arms per user: the ``user`` field, else the session header."""
    if not body.user:
        body.user = request.headers.get("x-session-id") or None


@router.get("/v1/models", response_model=ModelList)
async def list_models(request: Request) -> ModelList:
    wb = _wb(request)
    created = int(request.app.state.started)
    base = wb.loaded.model_id
    cards = [ModelCard(id=base, created=created, root=base, max_model_len=wb.max_model_len)]
    for name in wb.engine.adapters:
        version = wb.served.get(name)
        root = str(version.path) if version else name
        ids = [name, version.ref] if version else [name]
        cards += [ModelCard(id=i, created=created, root=root, parent=base, max_model_len=wb.max_model_len)
                  for i in ids]
    return ModelList(data=cards)


@router.post("/v1/chat/completions", response_model=ChatCompletion)
async def chat_completions(body: ChatCompletionRequest, request: Request):
    return await _answer(body, request, submit_chat, _chat_chunks, lambda job, text: ChatCompletion(
        id=f"chatcmpl-{job.id}", created=job.created, model=job.variant.model,
        choices=[ChatChoice(message=AssistantMessage(content=text), finish_reason=job.finish_reason())],
        usage=job.usage()))


@router.post("/v1/completions", response_model=TextCompletion)
async def completions(body: CompletionRequest, request: Request):
    return await _answer(body, request, submit_completion, _text_chunks, lambda job, text: TextCompletion(
        id=f"cmpl-{job.id}", created=job.created, model=job.variant.model,
        choices=[CompletionChoice(text=text, finish_reason=job.finish_reason())],
        usage=job.usage()))


async def _answer(body: Any, request: Request, submit: Callable, chunks: Callable,
                  whole: Callable[[Job, str], BaseModel]):
    """Both completion routes: queue ``body``, then stream its chunks or answer in one body."""
    wb = _wb(request)
    _sticky_user(body, request)
    job = await run_in_threadpool(submit, wb, body, request.app.state.settings)
    stream = PieceStream(wb, job)
    if body.stream:
        usage = bool(body.stream_options and body.stream_options.include_usage)
        return _sse(chunks(stream, job, usage), job)
    text = await _collect(stream, request)
    return JSONResponse(whole(job, text).model_dump(), headers=job.headers())


# ---- non-streaming -------------------------------------------------------------------------------
async def _collect(stream: PieceStream, request: Request) -> str:
    """The whole answer; a client that disconnects first cancels the request."""
    async def read() -> str:
        return "".join([piece async for piece in stream])

    task = asyncio.ensure_future(read())
    while not task.done():
        done, _ = await asyncio.wait({task}, timeout=0.25)
        if not done and await request.is_disconnected():
            stream.cancel("client disconnected before the answer was complete")
            task.cancel()
            raise APIError(499, "Client disconnected.")
    text = task.result()
    failure = stream.job.failure()
    if failure:
        raise APIError(500, failure)
    return text


# ---- streaming ------------------------------------------------------------------------------------
def _sse(chunks: AsyncIterator[dict], job: Job) -> StreamingResponse:
    async def body() -> AsyncIterator[bytes]:
        async for chunk in chunks:
            yield f"data: {json.dumps(chunk, ensure_ascii=False)}\n\n".encode()
        yield b"data: [DONE]\n\n"

    return StreamingResponse(body(), media_type="text/event-stream",
                             headers={**job.headers(), "Cache-Control": "no-cache"})


async def _guarded(stream: PieceStream, job: Job, make: Callable[[str | None, str | None], dict],
                   include_usage: bool) -> AsyncIterator[dict]:
    """Chunks for each piece, the finish chunk, the usage chunk; cancels on disconnect."""
    finished = False
    try:
        async for piece in stream:
            yield make(piece, None)
        failure = job.failure()
        if failure:
            yield error_body(500, failure)
        else:
            yield make(None, job.finish_reason())
        if include_usage:
            last = make(None, None)
            last["choices"], last["usage"] = [], job.usage().model_dump()
            yield last
        finished = True
    finally:
        if not finished:  # the client went away (the response task was cancelled)
            stream.cancel("client disconnected mid-stream")


def _chat_chunks(stream: PieceStream, job: Job, include_usage: bool) -> AsyncIterator[dict]:
    first = [True]

    def make(piece: str | None, finish: str | None) -> dict:
        delta: dict = {}
        if first[0]:
            delta["role"], first[0] = "assistant", False
        if piece is not None:
            delta["content"] = piece
        chunk = {"id": f"chatcmpl-{job.id}", "object": "chat.completion.chunk", "created": job.created,
                 "model": job.variant.model,
                 "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}
        if include_usage:
            chunk["usage"] = None
        return chunk

    return _guarded(stream, job, make, include_usage)


def _text_chunks(stream: PieceStream, job: Job, include_usage: bool) -> AsyncIterator[dict]:
    def make(piece: str | None, finish: str | None) -> dict:
        chunk = {"id": f"cmpl-{job.id}", "object": "text_completion", "created": job.created,
                 "model": job.variant.model,
                 "choices": [{"index": 0, "text": piece or "", "logprobs": None, "finish_reason": finish}]}
        if include_usage:
            chunk["usage"] = None
        return chunk

    return _guarded(stream, job, make, include_usage)
