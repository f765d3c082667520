"""The running workbench: one base model, its engine, the adapters registry and the chat log.

The UI, the CLI and the HTTP API all talk to a :class:`Workbench`; nothing else holds the
model. Besides owning those parts it decides three things every face shares:

* which variant a ``model`` string names (:meth:`Workbench.resolve_model`, the one function
  to extend with new kinds of names);
* who may administer adapters (:meth:`Workbench.check_admin`, the ``WORKBENCH_ADMIN_TOKEN``;
  administration is off when no token is set);
* that a request submitted through :meth:`Workbench.submit` is served by exactly the
  adapter version it was admitted with: a hot-swap of a name first waits for that name's
  requests in flight and holds new ones back (:meth:`Workbench.exclusive`).

Every request that ends, whoever submitted it, is counted once in :attr:`Workbench.telemetry`.
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import hmac
import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field

from workbench.adapters.lifecycle_history import pinned_refs
from workbench.adapters.registry import AdapterVersion, Registry
from workbench.adapters.validate import same_model, validate_adapter
from workbench.chatlog import ChatLog
from workbench.config import EngineConfig, engine_preset
from workbench.engine import BASE_ADAPTER, BASE_LABEL, BASE_NAMES, Engine, Priority, Request, SamplingParams
from workbench.errors import (AdapterError, AuthError, BusyError, UnknownNameError,
                              WorkbenchError)
from workbench.models.catalog import DEFAULT_MODEL, load_model
from workbench.models.loaded import LoadedModel
from workbench.routes import resolve_route
from workbench.telemetry import Telemetry

log = logging.getLogger(__name__)
# Names that mean the base model in a request's ``model`` field (besides the base's own id).
# Request ids -> the variant they were admitted with; bounded, since an engine may end a
# request without telling listeners (cancelled while queued).
_MAX_PINS = 8192


@dataclass(frozen=True)
class Variant:
    """What a request's ``model`` field resolved to."""

    # The id responses name: the base's id, or ``name@version`` of the adapter.
    model: str
    # Engine adapter name, None for the base model.
    adapter: str | None = None
    # The registered version served under that name (None for base or unregistered).
    version: AdapterVersion | None = None
    # The A/B route the request named, and the arm it was assigned (None: no route).
    route: str | None = None
    arm: str | None = None


class AdapterGate:
    """Admission of requests per adapter name against swaps of that name (one condition)."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.closed: set[str] = set()
        self.inflight: dict[str, dict[str, Request]] = {}

    def live(self, name: str) -> int:
        reqs = self.inflight.get(name, {})
        for rid in [r for r, req in reqs.items() if req.done_event.is_set()]:
            reqs.pop(rid)
        return len(reqs)


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
    # Bearer token for adapter administration (None: administration is off).
    admin_token: str | None = field(default_factory=lambda: os.environ.get("WORKBENCH_ADMIN_TOKEN") or None,
                                    repr=False)
    # Requests ended, for /metrics and live views (built from the engine in __post_init__).
    telemetry: Telemetry = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.telemetry = Telemetry(self.loaded.model_id, snapshot=self.engine.snapshot,
                                   versions=lambda: {n: v.version for n, v in self.served.items()})
        self._gate = AdapterGate()
        self._pins: OrderedDict[str, Variant] = OrderedDict()
        self._pins_lock = threading.Lock()
        self.engine.add_listener(self._on_request_done)

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
        if refs is None:  # the version each name served last (a rollback sticks), else the newest
            picks = [self.registry.resolve(r) for r in pinned_refs(self.registry)]
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
        """``cs-support@v2`` for adapters, ``base`` for the base model (the one name users see;
        ``__base__`` is only the engine's key for it)."""
        if variant in BASE_NAMES:
            return BASE_LABEL
        version = self.served.get(variant)
        return version.ref if version else variant

    # ---- model names ---------------------------------------------------------------------------
    @property
    def max_model_len(self) -> int:
        """Context window of the base (prompt plus answer), in tokens; for a remote base, what
        its server reports (vLLM does), else the engine's prompt budget."""
        model = getattr(self.loaded, "model", None)
        window = getattr(model.config, "max_position_embeddings", None) if model is not None \
            else getattr(self.loaded, "max_model_len", None)
        return int(window or self.engine.config.max_prompt_tokens)

    def model_ids(self) -> list[str]:
        """Every ``model`` value that resolves now: the base's id, ``base``, adapter names and refs."""
        ids = [self.loaded.model_id, "base"]
        for name in self.engine.adapters:
            version = self.served.get(name)
            ids += [name, version.ref] if version else [name]
        return ids

    def resolve_model(self, model: str, user: str | None = None) -> Variant:
        """The variant ``model`` names: the base (its id or ``base``), an adapter name (the
        version it serves now), or ``name@version`` of the version served now.

        Raises UnknownNameError (listing the known ids) for anything else, including a
        registered version that is not being served. ``user`` (the request's ``user`` field)
        is there for names whose variant depends on who asks.
        """
        model = (model or "").strip()
        # Routes first: a route may share its name with the adapter whose versions it splits.
        arm = resolve_route(model, user)
        if arm is not None:
            return dataclasses.replace(self._resolve_direct(arm), route=model, arm=arm)
        return self._resolve_direct(model)

    def _resolve_direct(self, model: str) -> Variant:
        if model in BASE_NAMES or any(same_model(model, b) for b in (self.loaded.model_id, self.loaded.name)):
            return Variant(self.loaded.model_id)
        name, _, version = model.partition("@")
        served = self.served.get(name) if name in self.engine.adapters else None
        if served is not None and version in ("", served.version):
            return Variant(served.ref, name, served)
        if name in self.engine.adapters and served is None and not version:
            return Variant(name, name)  # loaded outside the registry
        raise UnknownNameError("model", model, self.model_ids())

    # ---- requests --------------------------------------------------------------------------------
    def submit(self, model: str, messages: list[dict[str, str]], sampling: SamplingParams | None = None,
               max_new_tokens: int = 128, priority: Priority = Priority.INTERACTIVE,
               wait_s: float = 60.0, user: str | None = None,
               cut_last: bool = False) -> tuple[Request, Variant]:
        """Resolve ``model`` and queue the request; it is served by the version it names.

        While the named adapter is being swapped this waits (up to ``wait_s``) for the swap,
        then resolves again, so an unversioned name gets the new version.
        """
        name = self.resolve_model(model, user).adapter or ""
        deadline = time.monotonic() + wait_s
        with self._gate.cond:
            while name in self._gate.closed:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise BusyError(f"Adapter '{name}' is being swapped; try again in a moment.")
                self._gate.cond.wait(left)
            variant = self.resolve_model(model, user)
            req = self.engine.submit(messages, adapter=variant.adapter, sampling=sampling,
                                     max_new_tokens=max_new_tokens, priority=priority,
                                     cut_last=cut_last)
            if variant.adapter:
                self._gate.live(variant.adapter)  # drops ended requests, so the map stays small
                self._gate.inflight.setdefault(variant.adapter, {})[req.request_id] = req
            with self._pins_lock:
                self._pins[req.request_id] = variant
                while len(self._pins) > _MAX_PINS:
                    self._pins.popitem(last=False)
        return req, variant

    @contextlib.contextmanager
    def exclusive(self, name: str, timeout: float = 60.0) -> Iterator[None]:
        """Hold new requests for ``name`` back and wait for its requests in flight to end.

        Raises AdapterError, changing nothing, when they do not end within ``timeout``.
        """
        deadline = time.monotonic() + timeout
        with self._gate.cond:
            self._gate.closed.add(name)
            try:
                while self._gate.live(name):
                    if time.monotonic() > deadline:
                        raise AdapterError(f"Adapter '{name}' still has {self._gate.live(name)} "
                                           f"requests in flight after {timeout:.0f} s; try again.")
                    self._gate.cond.wait(0.05)
            except BaseException:
                self._gate.closed.discard(name)
                self._gate.cond.notify_all()
                raise
        try:
            yield
        finally:
            with self._gate.cond:
                self._gate.closed.discard(name)
                self._gate.cond.notify_all()

    def _on_request_done(self, req: Request) -> None:
        # Runs on the engine's thread: never wait on the gate here (a submit holding it may
        # be waiting on the engine); exclusive() sees ended requests by their done_event.
        with self._pins_lock:
            variant = self._pins.pop(req.request_id, None)
        if variant is None:  # submitted straight to the engine (chat tab, eval)
            served = self.served.get(req.adapter or "")
            variant = Variant(served.ref if served else (req.adapter or self.loaded.model_id),
                              req.adapter, served)
        self.telemetry.observe(req, variant.adapter, variant.version.version if variant.version else None,
                               variant.route)

    # ---- administration ----------------------------------------------------------------------
    @property
    def admin_enabled(self) -> bool:
        return bool(self.admin_token)

    def check_admin(self, token: str | None) -> str:
        """Accept the admin token or raise AuthError (401 missing, 403 wrong or off); returns its id."""
        if not self.admin_token:
            raise AuthError("Adapter administration is off: start the server with "
                            "WORKBENCH_ADMIN_TOKEN set to enable it.", status=403)
        if not token:
            raise AuthError("This action needs the admin token (Authorization: Bearer <token>).", 401)
        if not hmac.compare_digest(token.encode(), self.admin_token.encode()):
            raise AuthError("The admin token is wrong.", status=403)
        return token_id(token)

    def close(self) -> None:
        self.engine.shutdown()


def token_id(token: str) -> str:
    """A short, stable id of a token for audit lines; never the token itself."""
    return "tok-" + hashlib.sha256(token.encode()).hexdigest()[:10]

