"""The in-process backend: the continuous-batching engine over one copy of the base weights."""
from __future__ import annotations

from collections.abc import Sequence

from workbench.backends.base import Capabilities
from workbench.engine import loglik
from workbench.engine.engine import Engine
from workbench.models.loaded import LoadedModel


class LocalBackend(Engine):
    """The engine as a :class:`~workbench.backends.base.Backend`: it holds the weights, so it
    validates adapters against them and scores prompt log-likelihoods."""

    capabilities = Capabilities(loglik=True, swap_in_place=True, local_weights=True)

    @property
    def model_info(self) -> LoadedModel:
        return self.loaded

    @property
    def max_model_len(self) -> int:
        """Context window of the base (prompt plus answer), in tokens."""
        return int(self.runner.context_window() or self.config.max_prompt_tokens)

    def describe(self) -> dict:
        """What an eval run stores about where its answers came from, beyond the engine's
        settings and the model it names already: nothing for the local engine."""
        return {}

    def weights(self) -> LoadedModel:
        return self.loaded

    def loglik(self, items: Sequence[loglik.ChoiceItem]) -> list[loglik.ChoiceScores]:
        """Log-probabilities of each item's choices, between two engine steps."""
        return self.call_between_batches(lambda: loglik.score(self.runner, items), timeout=600.0)
