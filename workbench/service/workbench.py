"""The running workbench: one base model, its backend, the adapters registry and the chat log.

The UI, the CLI and the HTTP API all talk to a :class:`Workbench`; nothing else holds the
model, and every face serves a chat turn through one call, :meth:`Workbench.serve_turn`.
Besides owning the parts it decides what every face shares:

* which variant a ``model`` string names (:meth:`Workbench.resolve_model`, the one function
  to extend with new kinds of names);
* the prompt a turn is asked with (``workbench.domain.prompts``: one builder for all faces);
* that a turn is served by exactly the adapter version it was admitted with: a hot-swap of
  a name first waits for that name's turns in flight and holds new ones back
  (:meth:`Workbench.exclusive`, ``service/gate.py``);
* who may administer adapters (:meth:`Workbench.check_admin`, the ``WORKBENCH_ADMIN_TOKEN``;
  administration is off when no token is set).

Every request that ends, whoever submitted it, is counted once in :attr:`Workbench.telemetry`;
every turn is recorded once, by :attr:`Workbench.recorder`.
"""
from __future__ import annotations

import contextlib
import dataclasses
import hmac
import logging
import os
import threading
import time
from pathlib import Path
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field

from workbench.adapters.lifecycle_history import pinned_refs
from workbench.adapters.registry import AdapterVersion, Registry
from workbench.adapters.validate import read_config, read_shapes, same_model, validate_adapter
from workbench.backends.base import Backend, ModelIdentity
from workbench.backends.local import LocalBackend
from workbench.config import EngineConfig, engine_preset
from workbench.domain.prompts import build_prompt, check_place
from workbench.engine.request import BASE_ADAPTER, BASE_LABEL, BASE_NAMES, Request
from workbench.errors import AuthError, UnknownNameError, WorkbenchError
from workbench.models.catalog import DEFAULT_MODEL, load_model
from workbench.routing.routes import token_id
from workbench.routing import canary
from workbench.routing.store import default_store, resolve_route
from workbench.service.gate import AdapterGate
from workbench.service.recorder import TurnRecorder
from workbench.service.turns import Fit, ServedTurn, TurnHandle, TurnRequest, new_turn_id
from workbench.service.variants import Variant
from workbench.store.chatlog import ChatLog, Feedback
from workbench.telemetry.collector import Telemetry

log = logging.getLogger(__name__)
# Request ids -> the turn they serve; bounded, since a backend may end a request without
# telling listeners (cancelled while queued).
_MAX_PINS = 8192
# Answer length when a face does not say (the page's slider and the API set their own).
DEFAULT_MAX_NEW_TOKENS = 160
# How long a rating waits for the answer it rates to reach the recorder.
RECORD_WAIT_S = 10.0


@dataclass
class Workbench:
    """Everything a session of the app or the CLI works with."""

    # The base model's identity (the weights live in the backend).
    loaded: ModelIdentity
    # The backend serving it: the in-process engine or a remote OpenAI-compatible server.
    engine: Backend
    # Adapters on disk.
    registry: Registry
    # Chat answers and ratings.
    chatlog: ChatLog
    # Backend adapter name -> the registry version it serves.
    served: dict[str, AdapterVersion] = field(default_factory=dict)
    # Adapter preselected in the right-hand chat pane.
    default_adapter: str | None = None
    # Bearer token for adapter administration (None: administration is off).
    admin_token: str | None = field(default_factory=lambda: os.environ.get("WORKBENCH_ADMIN_TOKEN") or None,
                                    repr=False)
    # Requests ended, for /metrics and live views (built from the backend in __post_init__).
    telemetry: Telemetry = field(init=False, repr=False)
    # Where finished turns go (one writer for every face).
    recorder: TurnRecorder = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.telemetry = Telemetry(self.loaded.model_id, snapshot=self.engine.snapshot,
                                   versions=lambda: {n: v.version for n, v in self.served.items()})
        self.recorder = TurnRecorder(self.chatlog)
        self._gate = AdapterGate()
        self._pins: OrderedDict[str, tuple[Variant, TurnRequest | None]] = OrderedDict()
        self._pins_lock = threading.Condition()  # notified as ended turns are handed over
        self.engine.add_listener(self._on_request_done)

    @classmethod
    def start(cls, model: str = DEFAULT_MODEL, adapters: list[str] | None = None,
              engine_config: EngineConfig | None = None, registry: Registry | None = None,
              chatlog: ChatLog | None = None) -> "Workbench":
        """Load ``model`` into the in-process backend and serve it; ``adapters`` are refs to
        load (None: every compatible one)."""
        loaded = load_model(model)
        backend = LocalBackend(loaded, engine_config or engine_preset("interactive")).start()
        wb = cls(loaded, backend, registry or Registry(), chatlog or ChatLog())
        wb.load_startup_adapters(adapters)
        return wb

    def load_startup_adapters(self, refs: list[str] | None) -> None:
        """Serve ``refs`` (None: the version each name served last, else the newest)."""
        if refs is None:  # a rollback sticks across restarts
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
        self.validate_adapter(version.path)
        self.engine.load_adapter(version.name, version.path)
        self.served[version.name] = version

    def validate_adapter(self, path: Path) -> None:
        """Check an adapter folder against the base weights when they are in this process;
        against a server only its files are read (the server validates what it loads)."""
        loaded = self.engine.weights()
        if loaded is not None:
            validate_adapter(path, loaded)
        else:
            read_config(Path(path))
            read_shapes(Path(path))

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
        """Context window of the base (prompt plus answer), in tokens."""
        return self.engine.max_model_len

    def model_ids(self) -> list[str]:
        """Every ``model`` value that resolves now: the base's id, ``base``, adapter names and refs."""
        ids = [self.loaded.model_id, "base"]
        for name in self.engine.adapters:
            version = self.served.get(name)
            ids += [name, version.ref] if version else [name]
        return ids

    def resolve_model(self, model: str, user: str | None = None) -> Variant:
        """The variant ``model`` names: an A/B route (the arm ``user`` is assigned), the base
        (its id or ``base``), an adapter name (the version it serves now), or ``name@version``
        of the version served now.

        Raises UnknownNameError (listing the known ids) for anything else, including a
        registered version that is not being served.
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
        if model in self.engine.adapters and model not in self.served:
            return Variant(model, model)  # loaded outside the registry, or a remote server's id
        name, _, version = model.partition("@")
        served = self.served.get(name) if name in self.engine.adapters else None
        if served is not None and version in ("", served.version):
            return Variant(served.ref, name, served)
        raise UnknownNameError("model", model, self.model_ids())

    # ---- turns ---------------------------------------------------------------------------------
    def serve_turn(self, turn: TurnRequest, wait_s: float = 60.0) -> TurnHandle:
        """Serve one chat turn: resolve its model or route once, pass the swap gate and pin
        the version, build its prompt, queue it, and hand back a handle to read it by.

        While the named adapter is being swapped this waits (up to ``wait_s``) for the swap,
        then resolves again, so an unversioned name gets the new version.
        """
        check_place(turn.lang, turn.region)
        messages = build_prompt(turn.conversation, lang=turn.lang, region=turn.region,
                                grounded=turn.grounded)
        max_new = turn.max_new_tokens or min(DEFAULT_MAX_NEW_TOKENS, self.engine.config.max_new_tokens_limit)
        variant = self.resolve_model(turn.model, turn.user)
        turn_id = new_turn_id(turn.kind)
        with self._gate.cond:
            if self._gate.wait_open(variant.adapter or "", time.monotonic() + wait_s):
                variant = self.resolve_model(turn.model, turn.user)  # the swap may change it
            self._pin(turn_id, variant, turn)
            try:
                req = self.engine.submit(messages, adapter=variant.adapter, sampling=turn.sampling,
                                         max_new_tokens=max_new, priority=turn.priority,
                                         truncate=turn.fit != Fit.REFUSE,
                                         cut_last=turn.fit == Fit.CUT_LAST, request_id=turn_id,
                                         affinity=turn.user)
            except BaseException:
                self._unpin(turn_id)
                raise
            if variant.adapter:
                self._gate.admitted(variant.adapter, req)
        return TurnHandle(turn, variant, req, self._cancel_turn)

    def _cancel_turn(self, handle: TurnHandle, why: str) -> bool:
        if handle.done or not self.engine.cancel(handle.id):
            return False
        if handle.turn.face.value == "api":
            self.telemetry.client_disconnect(handle.variant.adapter, handle.variant.version_label)
        log.info("cancelled %s (%s): %s", handle.id, handle.variant.model, why)
        return True

    def cancel_turn(self, turn_id: str, why: str = "stopped by the user") -> bool:
        """Stop a turn by its id (the page's Stop button keeps ids, not handles)."""
        if not self.engine.cancel(turn_id):
            return False
        log.info("cancelled %s: %s", turn_id, why)
        return True

    def rate(self, turn_id: str, rating: int | None = None, resolved: bool | None = None) -> None:
        """The page's Rating / Resolved? radios: one outcome, the turn's others kept."""
        self.give_feedback(turn_id, Feedback(rating=rating, resolved=resolved), "page", merge=True)

    def give_feedback(self, turn_id: str, feedback: Feedback, source: str = "api",
                      merge: bool = False) -> dict:
        """Store a customer's feedback on a served answer (it replaces earlier feedback; the
        change is audited), count it, and let the answer's route guard act on it. Returns the
        turn's stored row."""
        feedback.check()
        self.wait_recorded([turn_id])
        row = self.chatlog.give_feedback(turn_id, feedback, source, merge=merge)
        self.telemetry.feedback(row["variant"], row["rating"],
                                None if row["resolved"] is None else bool(row["resolved"]),
                                None if row["escalated"] is None else bool(row["escalated"]))
        if row.get("route"):
            try:
                canary.check(default_store(), self.chatlog, row["route"])
            except WorkbenchError as exc:  # the feedback is stored; the guard says why it waits
                log.warning("guard of route %s did not act: %s", row["route"], exc.message)
        return row

    def wait_recorded(self, turn_ids: list[str]) -> None:
        """Wait until ended turns are stored (a page about to offer ratings, a rating): an
        answer just streamed may not have reached the recorder yet."""
        with self._pins_lock:
            self._pins_lock.wait_for(lambda: not any(t in self._pins for t in turn_ids),
                                     timeout=RECORD_WAIT_S)
        self.recorder.flush()

    def _pin(self, turn_id: str, variant: Variant, turn: TurnRequest | None) -> None:
        with self._pins_lock:
            self._pins[turn_id] = (variant, turn)
            while len(self._pins) > _MAX_PINS:
                self._pins.popitem(last=False)

    def _unpin(self, turn_id: str) -> tuple[Variant, TurnRequest | None] | None:
        with self._pins_lock:
            self._pins_lock.notify_all()
            return self._pins.pop(turn_id, None)

    @contextlib.contextmanager
    def exclusive(self, name: str, timeout: float = 60.0) -> Iterator[None]:
        """Hold new turns for ``name`` back and wait for its turns in flight to end."""
        with self._gate.exclusive(name, timeout):
            yield

    def _on_request_done(self, req: Request) -> None:
        # Runs on the backend's thread: never wait on the gate here (a turn being admitted
        # holds it and may wait on the backend); exclusive() sees ended requests by their
        # done_event. Recording is handed to the recorder's own thread, before the pin goes,
        # so a rating that waits for the pin finds the turn on its way to the store.
        with self._pins_lock:
            pinned = self._pins.get(req.request_id)
        if pinned is None:  # batch work submitted straight to the backend (eval, bench)
            served = self.served.get(req.adapter or "")
            pinned = (Variant(served.ref if served else (req.adapter or self.loaded.model_id),
                              req.adapter, served), None)
        variant, turn = pinned
        self.telemetry.observe(req, variant.adapter, variant.version_label, variant.route)
        if turn is not None:
            self.recorder.record(ServedTurn(req.request_id, turn, variant, self.loaded.name,
                                            req.output_text, req.finish_reason, req.error, req.metrics))
        self._unpin(req.request_id)

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
        self.recorder.close()

