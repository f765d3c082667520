"""The OpenAI wire format as the remote backend speaks it: model cards, request bodies, errors."""
from __future__ import annotations

import json
from dataclasses import dataclass

import httpx

from workbench.engine.request import Request, SamplingParams

# OpenAI finish reasons -> the engine's.
FINISH = {"stop": "eos", "length": "length"}


@dataclass(frozen=True)
class ServerModel:
    """One card of the server's ``GET /v1/models``."""

    id: str
    # The base model's id for an adapter card; None for a base.
    parent: str | None = None
    # Where the server loaded it from, when it says.
    root: str | None = None
    max_model_len: int | None = None


@dataclass(frozen=True)
class RemoteModel:
    """What callers know of a remote base model (the fields of LoadedModel they read)."""

    name: str
    model_id: str
    base_url: str
    models: tuple[ServerModel, ...] = ()
    device: str = "remote"
    precision: str = "remote"
    load_seconds: float = 0.0
    is_awq: bool = False

    @property
    def max_model_len(self) -> int | None:
        """The base card's context window, when the server says (vLLM does)."""
        return next((m.max_model_len for m in self.models if m.id == self.model_id), None)

    def describe(self) -> str:
        return f"{self.model_id} at {self.base_url} ({len(self.models)} models)"


def parse_models(payload: dict) -> tuple[ServerModel, ...]:
    return tuple(ServerModel(str(m["id"]), m.get("parent"), m.get("root"), m.get("max_model_len"))
                 for m in payload.get("data", []) if isinstance(m, dict) and "id" in m)


def error_message(resp: httpx.Response) -> str:
    """The server's message from the OpenAI/vLLM error envelope, else the body's start."""
    try:
        resp.read()
        body = resp.json()
    except (json.JSONDecodeError, UnicodeDecodeError, httpx.HTTPError):
        return f"HTTP {resp.status_code}: {resp.text[:300]}"
    err = body.get("error", body) if isinstance(body, dict) else body
    msg = err.get("message") if isinstance(err, dict) else None
    if not msg and isinstance(body, dict):
        msg = body.get("detail")
    return f"HTTP {resp.status_code}: {msg or str(body)[:300]}"


# vLLM's sampling fields beyond the OpenAI API; a strict server refuses them (HTTP 400/422).
VLLM_EXTRAS = ("repetition_penalty", "ignore_eos", "structured_outputs")


def request_body(model: str, req: Request, extras: bool = True) -> dict:
    """The chat-completions body for one request (greedy unless it asks otherwise);
    ``extras=False`` leaves out the fields only vLLM-compatible servers take."""
    s: SamplingParams = req.sampling
    body: dict = {"model": model, "messages": req.messages, "max_tokens": req.max_new_tokens,
                  "stream": True, "stream_options": {"include_usage": True},
                  "temperature": float(s.temperature)}
    if not s.greedy and s.top_p < 1.0:
        body["top_p"] = s.top_p
    if s.seed is not None:
        body["seed"] = s.seed
    if s.stop:
        body["stop"] = list(s.stop)
    if s.repetition_penalty != 1.0:  # vLLM's extra sampling field
        body["repetition_penalty"] = s.repetition_penalty
    if s.ignore_eos:
        body["ignore_eos"] = True
    if s.structured is not None and s.structured.json_schema:
        body["response_format"] = {"type": "json_schema", "json_schema": {
            "name": "answer", "schema": json.loads(s.structured.json_schema)}}
    elif s.structured is not None and s.structured.choice:
        body["structured_outputs"] = {"choice": list(s.structured.choice)}
    if not extras:
        for key in VLLM_EXTRAS:
            body.pop(key, None)
    return body
