"""Batched generation engine: one base model, many LoRA adapters, mixed batches.

The request types are importable without torch (the scheduler and UI need only them); the
engine itself loads on first use.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from workbench.engine.request import (BASE_ADAPTER, BASE_LABEL, BASE_NAMES, Completion, EngineSnapshot,
                                      Priority, Request, RequestMetrics, RequestSpec, RequestStatus,
                                      SamplingParams, StructuredOutput, TokenQueue)
from workbench.engine.stats import EngineStats

if TYPE_CHECKING:
    from workbench.engine.engine import Engine

_LAZY = {"Engine"}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        from workbench.engine import engine

        return getattr(engine, name)
    raise AttributeError(f"module 'workbench.engine' has no attribute {name!r}")


__all__ = ["BASE_ADAPTER", "BASE_LABEL", "BASE_NAMES", "Completion", "Engine", "EngineSnapshot", "EngineStats", "Priority", "Request",
           "RequestMetrics", "RequestSpec", "RequestStatus", "SamplingParams", "StructuredOutput",
           "TokenQueue"]
