"""A remote backend: any OpenAI-compatible server (vLLM, this project's API, ``transformers
serve``) behind the same interface the local Engine offers its callers.

``submit`` returns a :class:`Request` whose ``stream``, ``done_event`` and ``metrics`` behave
as the local engine's do, so the Chat and Evaluate tabs, the eval runner and the benchmark
drive a remote server unchanged. Variants are the server's models: the base is the model
card without a ``parent`` (vLLM and this project's API mark adapter cards with their base as
``parent``), every other card is an adapter name.

Latency is measured here, on the client, from the SSE stream: TTFT is the time from
``submit`` to the first content chunk, inter-token latency the gaps between content chunks
(a server may pack several tokens into one chunk; ``completion_tokens`` comes from the
stream's ``usage`` when the server sends it), end-to-end the time to the last chunk.
"""
from __future__ import annotations

import itertools
import json
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from workbench.backends.base import Capabilities, CapabilityError
from workbench.backends.openai_wire import (FINISH, VLLM_EXTRAS, RemoteModel, ServerModel,
                                            error_message, parse_models, request_body)
from workbench.config import EngineConfig
from workbench.engine.frontend import CallerMixin, check_request
from workbench.engine.request import (BASE_ADAPTER, BASE_LABEL, EngineSnapshot, Priority, Request,
                                      RequestStatus, SamplingParams)
from workbench.engine.stats import EngineStats
from workbench.errors import AdapterError, BusyError, UnknownNameError, WorkbenchError

if TYPE_CHECKING:
    from workbench.engine.loglik import ChoiceItem, ChoiceScores

__all__ = ["RemoteBackend", "RemoteModel", "ServerModel", "parse_models", "request_body"]

log = logging.getLogger(__name__)
_seq = itertools.count()
class RemoteBackend(CallerMixin):
    """Drives an OpenAI-compatible server through the same interface as the local engine."""

    capabilities = Capabilities(loglik=False, swap_in_place=False, local_weights=False)

    def __init__(self, base_url: str, api_key: str | None = None,
                 config: EngineConfig | None = None, base_model: str | None = None,
                 timeout_s: float = 600.0, transport: httpx.BaseTransport | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        # max_batch_size caps streams in flight to the server; max_queue the client's waiting line.
        self.config = config or EngineConfig()
        self.stats = EngineStats()
        self._base_hint = base_model
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        limits = httpx.Limits(max_connections=self.config.max_batch_size + 2)
        self._client = httpx.Client(base_url=self.base_url, headers=headers, limits=limits,
                                    timeout=httpx.Timeout(timeout_s, connect=10.0),
                                    transport=transport)
        self._queue: queue.PriorityQueue[tuple[int, int, Request]] = queue.PriorityQueue()
        self._requests: dict[str, Request] = {}
        self._running: dict[str, Request] = {}
        self._lock = threading.Lock()
        self._listeners: list[Callable[[Request], None]] = []
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()
        self.models: tuple[ServerModel, ...] = ()
        self.base_id = ""
        # Set once the server refused vLLM's extra sampling fields; later requests omit them.
        self.plain_openai = False
        # Asked when a request fails before its first token (connection refused, 5xx): True
        # means another server took it over, so it does not end here (see ``replicas.py``).
        self.failover: Callable[[Request, str], bool] | None = None

    # ---- lifecycle -------------------------------------------------------------------
    def start(self) -> "RemoteBackend":
        if not self._threads:
            self.refresh_models()
            for i in range(self.config.max_batch_size):
                t = threading.Thread(target=self._loop, name=f"remote-{i}", daemon=True)
                t.start()
                self._threads.append(t)
        return self

    def shutdown(self, timeout: float = 30.0) -> None:
        self._stop.set()
        for req in list(self._requests.values()):
            req.cancel()
        for t in self._threads:
            t.join(timeout / max(len(self._threads), 1))
        self._threads = []
        while not self._queue.empty():
            self._end(self._queue.get_nowait()[2], RequestStatus.FAILED,
                      "The engine shut down before this request ran.")
        self._client.close()

    def __enter__(self) -> "RemoteBackend":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    @property
    def alive(self) -> bool:
        return bool(self._threads) and not self._stop.is_set()

    @property
    def model_info(self) -> RemoteModel:
        return RemoteModel(self.base_id, self.base_id, self.base_url, self.models)

    @property
    def max_model_len(self) -> int:
        """The base's context window as the server reports it (vLLM does), else the prompt budget."""
        return int(self.model_info.max_model_len or self.config.max_prompt_tokens)

    def describe(self) -> dict:
        """What an eval run stores about where its answers came from."""
        return {"backend": {"kind": "openai", "base_url": self.base_url, "base": self.base_id,
                            "models": [m.id for m in self.models]}}

    def refresh_models(self) -> tuple[ServerModel, ...]:
        """Re-read the server's model list (adapters loaded there since show up here)."""
        try:
            resp = self._client.get("/models")
        except httpx.HTTPError as exc:
            raise WorkbenchError(f"Cannot reach the backend at {self.base_url}: {exc}") from exc
        if resp.status_code != 200:
            raise WorkbenchError(f"The backend at {self.base_url} refused GET /models "
                                 f"({error_message(resp)}).")
        models = parse_models(resp.json())
        if not models:
            raise WorkbenchError(f"The backend at {self.base_url} lists no models.")
        ids = [m.id for m in models]
        if self._base_hint and self._base_hint not in ids:
            raise UnknownNameError(f"model at {self.base_url}", self._base_hint, ids)
        self.models = models
        self.base_id = self._base_hint or next((m.id for m in models if not m.parent), ids[0])
        return models

    @property
    def in_flight(self) -> int:
        """Requests queued or streaming on this server."""
        with self._lock:
            return len(self._requests)

    def snapshot(self) -> EngineSnapshot:
        with self._lock:
            running = list(self._running.values())
            waiting = [r for r in self._requests.values() if r.status == RequestStatus.WAITING]
        return EngineSnapshot(len(running), len(waiting), tuple(r.adapter_key for r in running),
                              tuple(sorted({r.adapter_key for r in waiting})), tuple(self.adapters))

    # ---- requests ----------------------------------------------------------------------
    def submit(self, messages: list[dict[str, str]], adapter: str | None = None,
               sampling: SamplingParams | None = None, max_new_tokens: int = 128,
               priority: Priority = Priority.INTERACTIVE, cut_last: bool = False,
               truncate: bool = True, request_id: str | None = None,
               affinity: str | None = None) -> Request:
        """Queue a chat request for the server (one server: ``affinity`` has nothing to pick); BusyError when the client's queue is full.
        Fitting the prompt (``cut_last``, ``truncate``) is the server's business here: it
        knows its own context window and refuses what does not fit."""
        check_request(messages, max_new_tokens, self.config)
        adapter = None if adapter in (None, "", BASE_ADAPTER, self.base_id) else adapter
        if self._stop.is_set() or not self._threads:
            raise WorkbenchError("The remote engine is not running; no new requests are accepted.")
        if adapter is not None and adapter not in self.adapters:
            raise UnknownNameError(f"model at {self.base_url}", adapter,
                                   [BASE_LABEL, *self.adapters])
        req = Request(messages=messages, adapter=adapter, sampling=sampling or SamplingParams(),
                      max_new_tokens=max_new_tokens, priority=Priority(priority))
        if request_id:
            req.request_id = request_id
        with self._lock:
            if self._queue.qsize() >= self.config.max_queue:
                raise BusyError(f"{self._queue.qsize()} requests are waiting for {self.base_url}; "
                                "try again shortly.")
            self._requests[req.request_id] = req
            self._queue.put((int(req.priority), next(_seq), req))
        return req

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                _, _, req = self._queue.get(timeout=0.1)
            except queue.Empty:
                continue
            if req.cancelled:
                self._end(req, RequestStatus.CANCELLED)
                continue
            try:
                self._run(req)
            except Exception as exc:  # a bad response must never kill a worker
                log.warning("remote request %s failed: %s", req.request_id, exc)
                if not self._hand_over(req, str(exc)):
                    why = (f"The server at {self.base_url} failed mid-answer ({exc}); the answer is "
                           "incomplete." if req.metrics.token_times else f"Backend request failed: {exc}")
                    self._end(req, RequestStatus.FAILED, why)

    def _hand_over(self, req: Request, reason: str) -> bool:
        """Give a request that has not streamed anything to another server, if one takes it."""
        if req.metrics.token_times or req.cancelled or self.failover is None:
            return False
        with self._lock:
            self._running.pop(req.request_id, None)
            self._requests.pop(req.request_id, None)
        req.status = RequestStatus.WAITING
        if self.failover(req, reason):
            return True
        with self._lock:
            self._requests[req.request_id] = req
        return False

    def adopt(self, req: Request) -> None:
        """Queue a request another server could not serve (it keeps its id and stream)."""
        with self._lock:
            self._requests[req.request_id] = req
            self._queue.put((int(req.priority), next(_seq), req))

    def _run(self, req: Request) -> None:
        with self._lock:
            req.status = RequestStatus.RUNNING
            self._running[req.request_id] = req
        req.metrics.queue_ms = req.elapsed_ms()
        model = req.adapter or self.base_id
        body = request_body(model, req, extras=not self.plain_openai)
        with self._client.stream("POST", "/chat/completions", json=body) as resp:
            if resp.status_code in (400, 422) and any(k in body for k in VLLM_EXTRAS):
                self.plain_openai = True
                log.warning("%s refused vLLM's extra sampling fields (%s); sending plain OpenAI "
                            "requests from now on", self.base_url, error_message(resp))
                return self._run(req)
            if resp.status_code >= 500 and self._hand_over(req, f"HTTP {resp.status_code}"):
                return
            if resp.status_code != 200:
                self._end(req, RequestStatus.FAILED,
                          f"The backend refused the request ({error_message(resp)}).")
                return
            for line in resp.iter_lines():
                if req.cancelled:
                    self._end(req, RequestStatus.CANCELLED)
                    return
                if not line.startswith("data:"):
                    continue
                data = line[5:].strip()
                if data == "[DONE]":
                    break
                self._on_chunk(req, json.loads(data))
        self._end(req, RequestStatus.FINISHED)

    def _on_chunk(self, req: Request, chunk: dict) -> None:
        if "error" in chunk:  # some servers report a mid-stream failure as a chunk
            err = chunk["error"]
            raise WorkbenchError(err.get("message", str(err)) if isinstance(err, dict) else str(err))
        usage = chunk.get("usage")
        if usage:
            req.metrics.prompt_tokens = int(usage.get("prompt_tokens") or 0)
            req.metrics.completion_tokens = int(usage.get("completion_tokens") or 0)
            details = usage.get("prompt_tokens_details") or {}
            req.metrics.cached_tokens = int(details.get("cached_tokens") or 0)
        for choice in chunk.get("choices") or []:
            piece = (choice.get("delta") or {}).get("content")
            if piece:
                now = time.monotonic()
                if req.metrics.ttft_ms is None:
                    req.metrics.ttft_ms = req.elapsed_ms(now)
                req.metrics.token_times.append(now)
                req.output_text += piece
                req.stream.put(piece)
            if choice.get("finish_reason"):
                req.finish_reason = FINISH.get(choice["finish_reason"], choice["finish_reason"])

    def _end(self, req: Request, status: RequestStatus, error: str | None = None) -> None:
        m = req.metrics
        m.total_ms = req.elapsed_ms()
        if not m.completion_tokens:
            m.completion_tokens = len(m.token_times)  # no usage chunk: count content chunks
        if len(m.token_times) > 1 and m.completion_tokens > 1:
            m.tpot_ms = (m.token_times[-1] - m.token_times[0]) * 1000.0 / (m.completion_tokens - 1)
        req.status, req.error = status, error
        if status == RequestStatus.CANCELLED:
            req.finish_reason = "cancelled"
        elif status == RequestStatus.FAILED:
            req.finish_reason = "error"
        with self._lock:
            self._running.pop(req.request_id, None)
            self._requests.pop(req.request_id, None)
            self.stats.completed += 1
            self.stats.tokens += m.completion_tokens
            self.stats.prompt_tokens += m.prompt_tokens
            self.stats.cached_tokens += m.cached_tokens
        req.stream.put(None)
        req.done_event.set()
        self._call_listeners(req)

    def cancel(self, request_id: str) -> bool:
        """Cancel a queued or streaming request (the HTTP stream is closed); False if unknown."""
        req = self._requests.get(request_id)
        if req is None or req.status.is_done:
            return False
        req.cancel()
        return True

    # ---- adapters (the server's models) ------------------------------------------------
    @property
    def adapters(self) -> list[str]:
        return [m.id for m in self.models if m.id != self.base_id]

    def busy_adapters(self) -> set[str]:
        with self._lock:
            return {r.adapter_key for r in self._requests.values()}

    def load_adapter(self, name: str, path: str | Path, timeout: float = 120.0) -> None:
        """Ask the server to load an adapter (vLLM's runtime-LoRA endpoint), then re-list."""
        self._admin("/load_lora_adapter", {"lora_name": name, "lora_path": str(path)})

    def unload_adapter(self, name: str, drain: bool = False, timeout: float = 60.0) -> None:
        if name not in self.adapters:
            raise UnknownNameError(f"model at {self.base_url}", name, self.adapters)
        self._admin("/unload_lora_adapter", {"lora_name": name})

    def weights(self) -> None:
        return None  # the server holds them, and validates what it loads

    def loglik(self, items: Sequence["ChoiceItem"]) -> list["ChoiceScores"]:
        raise CapabilityError(f"The backend at {self.base_url} gives no prompt log-probabilities "
                              "here; multiple-choice scores need the local engine.")

    def replace_adapter(self, name: str, new_path: str | Path, old_path: str | Path,
                        timeout: float = 120.0) -> None:
        raise AdapterError("A remote backend cannot swap a version in place; load the new "
                           "version under its own name (name@version) on the server.")

    def _admin(self, path: str, body: dict) -> None:
        try:
            resp = self._client.post(path, json=body)
        except httpx.HTTPError as exc:
            raise AdapterError(f"Cannot reach the backend at {self.base_url}: {exc}") from exc
        if resp.status_code != 200:
            raise AdapterError(f"The backend refused {path} ({error_message(resp)}).")
        self.refresh_models()
