"""The running workbench: one base model, its engine, the adapters registry and the chat log.

The UI and the CLI both talk to a :class:`Workbench`; nothing else holds the model.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

from workbench.adapters.registry import AdapterVersion, Registry
from workbench.adapters.validate import same_model, validate_adapter
from workbench.chatlog import ChatLog
from workbench.config import EngineConfig, engine_preset
from workbench.engine import BASE_ADAPTER, Engine
from workbench.errors import WorkbenchError
from workbench.models.catalog import DEFAULT_MODEL, load_model
from workbench.models.loaded import LoadedModel

log = logging.getLogger(__name__)


@dataclass
class Workbench:
    """Everything a session of the app or the CLI works with."""

    # The base model (one copy of the weights).
    loaded: LoadedModel
    # The batched engine serving it.
    engine: Engine
    # Adapters on disk.
    registry: Registry
    # Chat answers and ratings.
    chatlog: ChatLog
    # Engine adapter name -> the registry version it serves.
    served: dict[str, AdapterVersion] = field(default_factory=dict)
    # Adapter preselected in the right-hand chat pane.
    default_adapter: str | None = None

    @classmethod
    def start(cls, model: str = DEFAULT_MODEL, adapters: list[str] | None = None,
              engine_config: EngineConfig | None = None, registry: Registry | None = None,
              chatlog: ChatLog | None = None) -> "Workbench":
        """Load ``model`` and serve it; ``adapters`` are refs to load (None: every compatible one)."""
        loaded = load_model(model)
        engine = Engine(loaded, engine_config or engine_preset("interactive")).start()
        wb = cls(loaded, engine, registry or Registry(), chatlog or ChatLog())
        wb._load_startup_adapters(adapters)
        return wb

    def _load_startup_adapters(self, refs: list[str] | None) -> None:
        if refs is None:
            picks = [self.registry.versions(n)[-1] for n in self.registry.names()]
            picks = [v for v in picks if self.compatible(v)]
        else:
            picks = [self.registry.resolve(r) for r in refs]
        for version in picks:
            try:
                self.serve(version)
            except WorkbenchError as exc:  # one bad adapter must not stop the app
                log.warning("skipping adapter %s: %s", version.ref, exc)
        if self.served and self.default_adapter is None:
            self.default_adapter = sorted(self.served)[0]

    def compatible(self, version: AdapterVersion) -> bool:
        """Whether the version names this base (the same rule validation applies)."""
        base = version.base_model
        return not base or any(same_model(base, ours) for ours in (self.loaded.model_id, self.loaded.name))

    def serve(self, version: AdapterVersion) -> None:
        """Validate a registered version against the base, then load it under its name."""
        validate_adapter(version.path, self.loaded)
        self.engine.load_adapter(version.name, version.path)
        self.served[version.name] = version

    @property
    def variants(self) -> list[str]:
        """Choices for a variant picker: base first, then loaded adapters."""
        return [BASE_ADAPTER, *self.engine.adapters]

    def variant_label(self, variant: str) -> str:
        """``cs-support@v2`` for adapters, ``__base__`` for the base model."""
        version = self.served.get(variant)
        return version.ref if version else variant

    def close(self) -> None:
        self.engine.shutdown()

