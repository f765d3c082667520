"""From an API body to an engine request and back: checks, submission, streaming bridge.

The engine streams text pieces through a blocking queue. :class:`PieceStream` moves them
onto the event loop from one small thread per request (a blocked ``get`` costs nothing),
so many concurrent streams neither poll nor exhaust the server's worker-thread pool.
"""
from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

from workbench.api.auth import APISettings
from workbench.api.errors import APIError
from workbench.api.models import ChatCompletionRequest, CompletionRequest, SamplingFields, Usage
from workbench.engine import Request, SamplingParams, StructuredOutput
from workbench.errors import InputError, UnknownNameError, WorkbenchError
from workbench.policy import policy_text
from workbench.service import Variant, Workbench

log = logging.getLogger("workbench.api")
# The engine's finish reasons, as OpenAI names them.
FINISH = {"eos": "stop", "stop": "stop", "length": "length"}


@dataclass
class Job:
    """One admitted request and what the response needs to say about it."""

    req: Request
    variant: Variant
    created: int

    @property
    def id(self) -> str:
        return self.req.request_id

    def headers(self) -> dict[str, str]:
        out = {"x-workbench-adapter": self.variant.model, "x-request-id": self.req.request_id}
        if self.variant.arm is not None:
            out["x-workbench-route-arm"] = self.variant.arm
        return out

    def usage(self) -> Usage:
        m = self.req.metrics
        return Usage(prompt_tokens=m.prompt_tokens, completion_tokens=m.completion_tokens,
                     total_tokens=m.prompt_tokens + m.completion_tokens,
                     prompt_tokens_details={"cached_tokens": m.cached_tokens})

    def finish_reason(self) -> str | None:
        return FINISH.get(self.req.finish_reason or "")

    def failure(self) -> str | None:
        """The engine's message when the request failed, else None."""
        if self.req.finish_reason == "error" or self.req.status.value == "failed":
            return self.req.error or "Generation failed."
        return None


# ---- building the request -------------------------------------------------------------------
def chat_messages(body: ChatCompletionRequest) -> list[dict[str, str]]:
    messages = [{"role": m.role, "content": m.text()} for m in body.messages]
    if body.region:
        try:
            policy = policy_text(body.region.upper())
        except UnknownNameError as exc:
            raise APIError(400, exc.message, "region") from exc
        if messages[0]["role"] == "system":
            messages[0] = {"role": "system", "content": messages[0]["content"] + "\n\n" + policy}
        else:
            messages.insert(0, {"role": "system", "content": policy})
    return messages


def sampling_of(body: SamplingFields, response_format: object | None = None) -> SamplingParams:
    structured = None
    so = body.structured_outputs
    if so is not None and so.choice:
        structured = StructuredOutput(choice=tuple(so.choice))
    elif so is not None and so.json_ is not None:
        schema = so.json_ if isinstance(so.json_, str) else json.dumps(so.json_)
        structured = StructuredOutput(json_schema=schema)
    fmt = response_format
    if structured is None and fmt is not None and getattr(fmt, "type", "text") == "json_schema":
        spec = getattr(fmt, "json_schema", None)
        structured = StructuredOutput(json_schema=json.dumps(spec.schema_ if spec else {}))
    elif structured is None and fmt is not None and getattr(fmt, "type", "text") == "json_object":
        structured = StructuredOutput(json_schema=json.dumps({"type": "object"}))
    temperature = 1.0 if body.temperature is None else body.temperature
    return SamplingParams(temperature=temperature, top_p=1.0 if body.top_p is None else body.top_p,
                          repetition_penalty=body.repetition_penalty, ignore_eos=body.ignore_eos,
                          seed=body.seed, stop=tuple(body.stop or ()), structured=structured)


def max_tokens_of(wb: Workbench, body: SamplingFields, settings: APISettings) -> int:
    limit = wb.engine.config.max_new_tokens_limit
    wanted = body.max_tokens if body.max_tokens is not None else min(settings.default_max_tokens, limit)
    if not 1 <= wanted <= limit:
        raise APIError(400, f"max_tokens must be between 1 and {limit}, not {wanted}.", "max_tokens")
    return wanted


def check_context(wb: Workbench, messages: list[dict[str, str]], max_tokens: int, truncate: bool) -> None:
    """Refuse a prompt that does not fit, unless the request allows cutting old turns."""
    if not any(m["role"] == "user" and m["content"].strip() for m in messages):
        raise APIError(400, "The conversation needs at least one non-empty user message.", "messages")
    tok = getattr(wb.loaded, "tokenizer", None)
    if truncate or tok is None:  # no tokenizer here: a remote backend's server decides
        return
    try:
        text = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        n = len(tok(text, add_special_tokens=False)["input_ids"])
    except Exception as exc:  # a template that rejects this conversation's shape
        raise APIError(400, f"The conversation cannot be templated for this model ({exc}).",
                       "messages") from exc
    window = wb.max_model_len
    budget = min(wb.engine.config.max_prompt_tokens, window - max_tokens)
    if n > budget:
        raise APIError(400, f"This model's maximum context length is {window} tokens, and prompts "
                       f"may use at most {budget} of them with max_tokens={max_tokens}; your "
                       f"messages resulted in {n} tokens. Shorten the conversation, lower "
                       "max_tokens, or send \"truncate\": true to drop the oldest turns.", "messages")


def submit_chat(wb: Workbench, body: ChatCompletionRequest, settings: APISettings) -> Job:
    """Check and queue a chat completion (blocking: runs in a worker thread)."""
    messages = chat_messages(body)
    max_tokens = max_tokens_of(wb, body, settings)
    wb.resolve_model(body.model, body.user)  # an unknown model is a 404 before any tokenizing
    check_context(wb, messages, max_tokens, body.truncate)
    return _submit(wb, body, messages, max_tokens, sampling_of(body, body.response_format))


def submit_completion(wb: Workbench, body: CompletionRequest, settings: APISettings) -> Job:
    """A raw prompt is served as one user turn: the engine serves chat-templated requests."""
    messages = [{"role": "user", "content": body.text()}]
    max_tokens = max_tokens_of(wb, body, settings)
    wb.resolve_model(body.model, body.user)
    check_context(wb, messages, max_tokens, body.truncate)
    return _submit(wb, body, messages, max_tokens, sampling_of(body))


def _submit(wb: Workbench, body: SamplingFields, messages: list[dict[str, str]], max_tokens: int,
            sampling: SamplingParams) -> Job:
    try:
        req, variant = wb.submit(body.model, messages, sampling=sampling, max_new_tokens=max_tokens,
                                 user=body.user)
    except InputError as exc:
        raise APIError(400, exc.message, "messages") from exc
    return Job(req, variant, int(time.time()))


# ---- streaming bridge -------------------------------------------------------------------------
class PieceStream:
    """The request's text pieces as an async iterator; ends when the request does."""

    def __init__(self, wb: Workbench, job: Job) -> None:
        self.wb, self.job = wb, job
        self.loop = asyncio.get_running_loop()
        self.queue: asyncio.Queue[str | None] = asyncio.Queue()
        threading.Thread(target=self._pump, name=f"stream-{job.id}", daemon=True).start()

    def _pump(self) -> None:
        try:
            for piece in self.wb.engine.stream(self.job.req):
                self._put(piece)
        except WorkbenchError as exc:  # the request was refused or cancelled: one line
            log.warning("stream of %s broke: %s", self.job.id, exc.message)
        except Exception:  # a fault: the response ends, the log keeps the traceback
            log.exception("stream of %s broke", self.job.id)
        finally:
            self._put(None)

    def _put(self, item: str | None) -> None:
        try:
            self.loop.call_soon_threadsafe(self.queue.put_nowait, item)
        except RuntimeError:  # the loop is gone (server shutting down)
            self.wb.engine.cancel(self.job.id)

    async def __aiter__(self) -> AsyncIterator[str]:
        while True:
            piece = await self.queue.get()
            if piece is None:
                break
            yield piece
        # done_event is set right after the end marker; wait without blocking the loop.
        while not self.job.req.done_event.is_set():
            await asyncio.sleep(0.005)

    def cancel(self, why: str) -> None:
        """Stop the request (client went away); counted and logged once."""
        if self.job.req.done_event.is_set():
            return
        if self.wb.engine.cancel(self.job.id):
            self.wb.telemetry.client_disconnect(self.job.variant.adapter,
                                                self.job.variant.version.version
                                                if self.job.variant.version else None)
            log.info("cancelled %s (%s): %s", self.job.id, self.job.variant.model, why)
