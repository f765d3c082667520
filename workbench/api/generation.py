"""From an API body to a service turn: the typed fields the completion routes map.

Both completion routes build a :class:`TurnRequest` here and hand it to
``Workbench.serve_turn``, the call every face uses; the service resolves the model or
route, builds the grounded prompt and validates the request once.
"""
from __future__ import annotations

import json

from workbench.api.auth import APISettings
from workbench.api.models import ChatCompletionRequest, CompletionRequest, SamplingFields, Usage
from workbench.engine.request import SamplingParams, StructuredOutput
from workbench.service.turns import Face, Fit, TurnHandle, TurnRequest


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


def max_tokens_of(body: SamplingFields, settings: APISettings, limit: int) -> int:
    """The answer's cap: the body's, else the server's default (the backend checks the range)."""
    return body.max_tokens if body.max_tokens is not None else min(settings.default_max_tokens, limit)


def chat_turn(body: ChatCompletionRequest, settings: APISettings, limit: int) -> TurnRequest:
    """A chat completion as a turn: the caller's messages, grounded when it names a language
    or a region (``docs/api.md`` says how grounding combines with its own system message)."""
    return TurnRequest(body.model, tuple({"role": m.role, "content": m.text()} for m in body.messages),
                       Face.API, lang=body.lang, region=body.region.upper() if body.region else None,
                       sampling=sampling_of(body, body.response_format),
                       max_new_tokens=max_tokens_of(body, settings, limit), user=body.user,
                       fit=Fit.DROP_TURNS if body.truncate else Fit.REFUSE, kind="chat")


def completion_turn(body: CompletionRequest, settings: APISettings, limit: int) -> TurnRequest:
    """A raw prompt is served as one user turn: the engine serves chat-templated requests."""
    return TurnRequest(body.model, ({"role": "user", "content": body.text()},), Face.API,
                       sampling=sampling_of(body), max_new_tokens=max_tokens_of(body, settings, limit),
                       user=body.user, fit=Fit.DROP_TURNS if body.truncate else Fit.REFUSE,
                       kind="text")


def headers(handle: TurnHandle) -> dict[str, str]:
    """Every response names the variant that served it, fixed when it was admitted."""
    out = {"x-workbench-adapter": handle.variant.model, "x-request-id": handle.id}
    if handle.variant.arm is not None:
        out["x-workbench-route-arm"] = handle.variant.arm
    return out


def usage(handle: TurnHandle) -> Usage:
    m = handle.metrics
    return Usage(prompt_tokens=m.prompt_tokens, completion_tokens=m.completion_tokens,
                 total_tokens=m.prompt_tokens + m.completion_tokens,
                 prompt_tokens_details={"cached_tokens": m.cached_tokens})
