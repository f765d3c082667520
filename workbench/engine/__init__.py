"""Batched generation engine: one base model, many LoRA adapters, mixed batches."""
from workbench.engine.engine import Engine, EngineStats, RequestSpec
from workbench.engine.request import (BASE_ADAPTER, Completion, Request, RequestMetrics,
                                      RequestStatus, SamplingParams)

__all__ = ["BASE_ADAPTER", "Completion", "Engine", "EngineStats", "Request", "RequestMetrics",
           "RequestSpec", "RequestStatus", "SamplingParams"]
