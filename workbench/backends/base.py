"""One interface for whatever generates the answers: the in-process engine or a server.

:class:`Backend` is what the service, the eval runner and the benchmark call. Two
implementations: :class:`workbench.backends.local.LocalBackend` (the continuous-batching
engine in this process) and :class:`workbench.backends.remote.RemoteBackend` (any
OpenAI-compatible server: vLLM, this project's own API). What one of them cannot do is a
declared :class:`Capabilities` flag, and asking for it anyway raises
:class:`CapabilityError` with a message that says why.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from workbench.config import EngineConfig
from workbench.engine.request import (Completion, EngineSnapshot, Priority, Request, RequestSpec,
                                      SamplingParams)
from workbench.engine.stats import EngineStats
from workbench.errors import WorkbenchError
from workbench.models.loaded import LoadedModel

if TYPE_CHECKING:  # the scoring types live beside torch code; the interface stays torch-free
    from workbench.engine.loglik import ChoiceItem, ChoiceScores


class CapabilityError(WorkbenchError):
    """The backend cannot do this (a remote server has no prompt log-probabilities here)."""


@dataclass(frozen=True)
class Capabilities:
    """What a backend can do beyond generating text."""

    # Prompt log-likelihoods (multiple-choice scoring by acc / acc_norm).
    loglik: bool
    # Swap an adapter's weights under the same name without a restart (hot-swap).
    swap_in_place: bool
    # Adapters are validated against the base weights here (a server validates its own).
    local_weights: bool


class ModelIdentity(Protocol):
    """The base model as the service names it."""

    # Hub id or folder the weights came from (what ``/v1/models`` lists as the base).
    model_id: str
    # Short name users see (a preset name, or the id).
    name: str

    def describe(self) -> str: ...


@runtime_checkable
class Backend(Protocol):
    """What every backend offers its callers."""

    config: EngineConfig
    capabilities: Capabilities

    @property
    def model_info(self) -> ModelIdentity: ...
    @property
    def max_model_len(self) -> int: ...
    @property
    def adapters(self) -> list[str]: ...
    @property
    def alive(self) -> bool: ...
    @property
    def stats(self) -> EngineStats: ...

    def start(self) -> "Backend": ...
    def shutdown(self, timeout: float = 30.0) -> None: ...
    def describe(self) -> dict: ...
    def snapshot(self) -> EngineSnapshot: ...

    # ---- requests ----------------------------------------------------------------------------
    def submit(self, messages: list[dict[str, str]], adapter: str | None = None,
               sampling: SamplingParams | None = None, max_new_tokens: int = 128,
               priority: Priority = Priority.INTERACTIVE, cut_last: bool = False,
               truncate: bool = True, request_id: str | None = None,
               affinity: str | None = None) -> Request: ...
    def cancel(self, request_id: str) -> bool: ...
    def add_listener(self, fn: Callable[[Request], None]) -> None: ...
    def stream(self, req: Request, timeout: float | None = None) -> Iterator[str]: ...
    def generate(self, messages: list[dict[str, str]], adapter: str | None = None,
                 max_new_tokens: int = 128, sampling: SamplingParams | None = None,
                 priority: Priority = Priority.INTERACTIVE) -> Completion: ...
    def generate_many(self, specs: Iterable[RequestSpec],
                      on_done: Callable[[int, Completion], None] | None = None) -> list[Completion]: ...
    def loglik(self, items: Sequence["ChoiceItem"]) -> list["ChoiceScores"]: ...

    # ---- adapters ----------------------------------------------------------------------------
    def busy_adapters(self) -> set[str]: ...
    def weights(self) -> LoadedModel | None:
        """The base weights when they are in this process (None: a server holds them)."""
    def load_adapter(self, name: str, path: str | Path, timeout: float = 120.0) -> None: ...
    def unload_adapter(self, name: str, drain: bool = False, timeout: float = 60.0) -> None: ...
    def replace_adapter(self, name: str, new_path: str | Path, old_path: str | Path,
                        timeout: float = 120.0) -> None: ...
