"""The engine's counters: kept by the worker loop, read by the engine's callers, the
status bar and the metrics endpoint (the remote backend keeps the same ones). No torch."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass
class EngineStats:
    """Counters for the status bar and the metrics endpoint."""

    # Decode steps run since start (one token for every running row each).
    steps: int = 0
    # Prefill chunks run since start.
    prefill_chunks: int = 0
    # Sum over decode steps of the rows in the step (mean running batch = decode_rows / steps).
    decode_rows: int = 0
    # Requests finished, cancelled or failed since start.
    completed: int = 0
    # Tokens generated since start.
    tokens: int = 0
    # Rows in the last decode step.
    last_batch_size: int = 0
    # Prompt tokens of ended requests, and how many of them the prefix cache served.
    prompt_tokens: int = 0
    cached_tokens: int = 0
    # Batch rows that gave their slot to interactive requests.
    preemptions: int = 0
    # Model steps that raised (their rows failed; serving went on).
    failed_steps: int = 0

    @property
    def batches(self) -> int:
        """Model decode steps (the old name, kept for callers)."""
        return self.steps

    @property
    def mean_running_batch(self) -> float:
        return self.decode_rows / self.steps if self.steps else 0.0
