"""What a request's ``model`` field resolved to."""
from __future__ import annotations

from dataclasses import dataclass

from workbench.adapters.registry import AdapterVersion
from workbench.engine.request import BASE_LABEL


@dataclass(frozen=True)
class Variant:
    """The variant that serves a turn, fixed when the turn is admitted."""

    # The id responses name: the base's id, or ``name@version`` of the adapter.
    model: str
    # Backend adapter name, None for the base model.
    adapter: str | None = None
    # The registered version served under that name (None for base or unregistered).
    version: AdapterVersion | None = None
    # The A/B route the request named, and the arm it was assigned (None: no route).
    route: str | None = None
    arm: str | None = None

    @property
    def label(self) -> str:
        """The one name users see: ``base``, or the adapter's ``name@version``."""
        return BASE_LABEL if self.adapter is None else self.model

    @property
    def version_label(self) -> str | None:
        return self.version.version if self.version else None
