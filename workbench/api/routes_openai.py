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
from workbench.api.generation import chat_turn, completion_turn, headers, usage
from workbench.api.models import (AssistantMessage, ChatChoice, ChatCompletion, ChatCompletionRequest,
                                  CompletionChoice, CompletionRequest, ModelCard, ModelList,
                                  TextCompletion)
from workbench.service.turns import TurnHandle
from workbench.service.workbench import Workbench

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
    return await _answer(body, request, chat_turn, _chat_chunks, lambda h, text: ChatCompletion(
        id=h.id, created=h.created, model=h.variant.model,
        choices=[ChatChoice(message=AssistantMessage(content=text), finish_reason=h.finish_reason)],
        usage=usage(h)))


@router.post("/v1/completions", response_model=TextCompletion)
async def completions(body: CompletionRequest, request: Request):
    return await _answer(body, request, completion_turn, _text_chunks, lambda h, text: TextCompletion(
        id=h.id, created=h.created, model=h.variant.model,
        choices=[CompletionChoice(text=text, finish_reason=h.finish_reason)], usage=usage(h)))


async def _answer(body: Any, request: Request, make_turn: Callable, chunks: Callable,
                  whole: Callable[[TurnHandle, str], BaseModel]):
    """Both completion routes: serve ``body`` as a turn, then stream its chunks or answer in
    one body."""
    wb = _wb(request)
    _sticky_user(body, request)
    turn = make_turn(body, request.app.state.settings, wb.engine.config.max_new_tokens_limit)
    # Blocking (the swap gate, tokenizing): off the event loop.
    handle = await run_in_threadpool(wb.serve_turn, turn)
    if body.stream:
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        return _sse(chunks(handle, include_usage), handle)
    text = await _collect(handle, request)
    return JSONResponse(whole(handle, text).model_dump(), headers=headers(handle))


# ---- non-streaming -------------------------------------------------------------------------------
async def _collect(handle: TurnHandle, request: Request) -> str:
    """The whole answer; a client that disconnects first cancels the turn."""
    async def read() -> str:
        return "".join([piece async for piece in handle])

    reading, gone = asyncio.ensure_future(read()), asyncio.ensure_future(_disconnect(request))
    done, _ = await asyncio.wait({reading, gone}, return_when=asyncio.FIRST_COMPLETED)
    if reading not in done:
        reading.cancel()
        handle.cancel("client disconnected before the answer was complete")
        raise APIError(499, "Client disconnected.")
    gone.cancel()
    text = reading.result()
    if handle.failure:
        raise APIError(500, handle.failure)
    return text


async def _disconnect(request: Request) -> None:
    """Returns when the client goes away (the server's next message after the body)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


# ---- streaming ------------------------------------------------------------------------------------
def _sse(chunks: AsyncIterator[dict], handle: TurnHandle) -> StreamingResponse:
    async def body() -> AsyncIterator[bytes]:
        async for chunk in chunks:
            yield f"data: {json.dumps(chunk, ensure_ascii=False)}\n\n".encode()
        yield b"data: [DONE]\n\n"

    return StreamingResponse(body(), media_type="text/event-stream",
                             headers={**headers(handle), "Cache-Control": "no-cache"})


async def _guarded(handle: TurnHandle, make: Callable[[str | None, str | None], dict],
                   include_usage: bool) -> AsyncIterator[dict]:
    """Chunks for each piece, the finish chunk, the usage chunk; cancels on disconnect."""
    finished = False
    try:
        async for piece in handle:
            yield make(piece, None)
        if handle.failure:
            yield error_body(500, handle.failure)
        else:
            yield make(None, handle.finish_reason)
        if include_usage:
            last = make(None, None)
            last["choices"], last["usage"] = [], usage(handle).model_dump()
            yield last
        finished = True
    finally:
        if not finished:  # the client went away (the response task was cancelled)
            handle.cancel("client disconnected mid-stream")


def _chat_chunks(handle: TurnHandle, include_usage: bool) -> AsyncIterator[dict]:
    first = [True]

    def make(piece: str | None, finish: str | None) -> dict:
        delta: dict = {}
        if first[0]:
            delta["role"], first[0] = "assistant", False
        if piece is not None:
            delta["content"] = piece
        chunk = {"id": handle.id, "object": "chat.completion.chunk", "created": handle.created,
                 "model": handle.variant.model,
                 "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}
        if include_usage:
            chunk["usage"] = None
        return chunk

    return _guarded(handle, make, include_usage)


def _text_chunks(handle: TurnHandle, include_usage: bool) -> AsyncIterator[dict]:
    def make(piece: str | None, finish: str | None) -> dict:
        chunk = {"id": handle.id, "object": "text_completion", "created": handle.created,
                 "model": handle.variant.model,
                 "choices": [{"index": 0, "text": piece or "", "logprobs": None, "finish_reason": finish}]}
        if include_usage:
            chunk["usage"] = None
        return chunk

    return _guarded(handle, make, include_usage)
