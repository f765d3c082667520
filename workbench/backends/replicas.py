"""Several OpenAI-compatible servers (vLLM replicas) behind one backend.

A request goes to a healthy replica that has its adapter, preferring the one with the fewest
requests in flight; with an affinity key (the user or session) it stays on the same replica
while that one is healthy, so the replica's prefix cache is reused (rendezvous hashing: a
replica going away moves only its own users). A replica that refuses connections or answers
5xx is marked down and probed until it answers again; a request that had not streamed yet is
retried on another replica, one that had streamed ends with a clear error.

Adapters are the workbench's desired state: each served version is loaded on every replica
under its own ``name@version`` id (never reusing an id for new weights), re-loaded on a
replica that restarted, and unloaded when no longer wanted. Callers name adapters by name; a
hot-swap loads the new version everywhere first, then moves the name to it, then unloads the
old one, so no request is served by a version the workbench did not pick.
"""
from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable, Sequence
from pathlib import Path, PurePath

import httpx

from workbench.backends.base import Capabilities, CapabilityError
from workbench.backends.openai_wire import RemoteModel
from workbench.backends.remote import RemoteBackend
from workbench.config import EngineConfig
from workbench.engine.frontend import CallerMixin, check_request
from workbench.engine.request import (BASE_ADAPTER, BASE_LABEL, EngineSnapshot, Priority,
                                      ReplicaState, Request, SamplingParams)
from workbench.engine.stats import EngineStats
from workbench.errors import AdapterError, UnknownNameError, WorkbenchError

log = logging.getLogger(__name__)
PROBE_S = 2.0


class ReplicaSet(CallerMixin):
    """Replicas behind the Backend interface (see the module docstring)."""

    capabilities = Capabilities(loglik=False, swap_in_place=True, local_weights=False)

    def __init__(self, base_urls: Sequence[str], api_key: str | None = None,
                 config: EngineConfig | None = None, base_model: str | None = None,
                 adapter_root: Path | None = None, registry_root: Path | None = None,
                 transports: Sequence[httpx.BaseTransport] | None = None) -> None:
        self.config = config or EngineConfig()
        self.replicas = [RemoteBackend(url, api_key, self.config, base_model,
                                       transport=transports[i] if transports else None)
                         for i, url in enumerate(base_urls)]
        self.up = {r.base_url: False for r in self.replicas}
        self.adapter_root, self.registry_root = adapter_root, registry_root
        self.wanted: dict[str, tuple[str, Path]] = {}  # name -> (name@version id, folder)
        self._owner: dict[str, RemoteBackend] = {}
        self._listeners: list[Callable[[Request], None]] = []
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._prober: threading.Thread | None = None
        for replica in self.replicas:
            replica.failover = self._failover
            replica.add_listener(self._ended)

    # ---- lifecycle -------------------------------------------------------------------
    def start(self) -> "ReplicaSet":
        for replica in self.replicas:
            self._probe(replica)
        if not any(self.up.values()):
            raise WorkbenchError("No replica answered: " + ", ".join(self.up))
        self._prober = threading.Thread(target=self._probe_loop, name="replica-probe", daemon=True)
        self._prober.start()
        return self

    def shutdown(self, timeout: float = 30.0) -> None:
        self._stop.set()
        for replica in self.replicas:
            replica.shutdown(timeout / len(self.replicas))

    @property
    def alive(self) -> bool:
        return not self._stop.is_set() and any(self.up.values())

    def _healthy(self) -> list[RemoteBackend]:
        return [r for r in self.replicas if self.up[r.base_url]]

    @property
    def model_info(self) -> RemoteModel:
        first = (self._healthy() or self.replicas)[0].model_info
        return RemoteModel(first.name, first.model_id, ", ".join(self.up), first.models)

    @property
    def max_model_len(self) -> int:
        return (self._healthy() or self.replicas)[0].max_model_len

    @property
    def stats(self) -> EngineStats:
        total = EngineStats()
        for replica in self.replicas:
            for field in ("completed", "tokens", "prompt_tokens", "cached_tokens"):
                setattr(total, field, getattr(total, field) + getattr(replica.stats, field))
        return total

    def describe(self) -> dict:
        return {"backend": {"kind": "openai", "replicas": list(self.up), "base": self.model_info.model_id,
                            "adapters": {n: ref for n, (ref, _) in self.wanted.items()}}}

    def replica_states(self) -> tuple[ReplicaState, ...]:
        return tuple(ReplicaState(r.base_url, self.up[r.base_url], r.in_flight,
                                  tuple(sorted(r.adapters))) for r in self.replicas)

    def snapshot(self) -> EngineSnapshot:
        snaps = [r.snapshot() for r in self._healthy()]
        return EngineSnapshot(sum(s.running for s in snaps), sum(s.waiting for s in snaps),
                              tuple(a for s in snaps for a in s.running_adapters),
                              tuple(sorted({a for s in snaps for a in s.waiting_adapters})),
                              tuple(self.adapters), decode=f"{len(snaps)}/{len(self.replicas)} replicas up",
                              replicas=self.replica_states())

    # ---- requests ----------------------------------------------------------------------
    def submit(self, messages: list[dict[str, str]], adapter: str | None = None,
               sampling: SamplingParams | None = None, max_new_tokens: int = 128,
               priority: Priority = Priority.INTERACTIVE, cut_last: bool = False,
               truncate: bool = True, request_id: str | None = None,
               affinity: str | None = None) -> Request:
        check_request(messages, max_new_tokens, self.config)
        adapter = None if adapter in (None, "", BASE_ADAPTER, self.model_info.model_id) else adapter
        model = self._model_id(adapter)
        replica = self._pick(model, affinity)
        # The request carries the replica's id for the adapter (name@version); the service's
        # pin keeps the name the caller asked for.
        req = replica.submit(messages, model, sampling, max_new_tokens, priority, cut_last, truncate,
                             request_id)
        with self._lock:
            self._owner[req.request_id] = replica
        return req

    def _model_id(self, adapter: str | None) -> str | None:
        if adapter is None:
            return None
        if adapter in self.wanted:
            return self.wanted[adapter][0]
        if any(adapter in r.adapters for r in self._healthy()):
            return adapter  # loaded on the replicas by someone else (e.g. --lora-modules)
        raise UnknownNameError("adapter", adapter, [BASE_LABEL, *self.adapters])

    def _pick(self, model: str | None, affinity: str | None,
              exclude: tuple[str, ...] = ()) -> RemoteBackend:
        able = [r for r in self._healthy() if r.base_url not in exclude
                and (model is None or model in r.adapters)]
        if not able:
            raise WorkbenchError(f"No healthy replica serves {model or 'the base'} now "
                                 f"({sum(self.up.values())}/{len(self.replicas)} replicas up).")
        if affinity:
            return max(able, key=lambda r: hashlib.sha256(f"{affinity}|{r.base_url}".encode()).digest())
        return min(able, key=lambda r: r.in_flight)

    def _failover(self, req: Request, reason: str) -> bool:
        """A replica failed ``req`` before its first token: mark it down, try another."""
        with self._lock:
            failed = self._owner.get(req.request_id)
            if failed is not None:
                self._mark(failed, False, reason)
            try:
                other = self._pick(self._model_id(req.adapter) if req.adapter else None, None,
                                   exclude=(failed.base_url,) if failed else ())
            except WorkbenchError:
                return False
            self._owner[req.request_id] = other
        log.warning("request %s moves to %s: %s", req.request_id, other.base_url, reason)
        other.adopt(req)
        return True

    def _ended(self, req: Request) -> None:
        with self._lock:
            self._owner.pop(req.request_id, None)
        self._call_listeners(req)

    def cancel(self, request_id: str) -> bool:
        with self._lock:
            replica = self._owner.get(request_id)
        return replica.cancel(request_id) if replica is not None else False

    def loglik(self, items: Sequence[object]) -> list:
        raise CapabilityError("Replicas give no prompt log-probabilities here; multiple-choice "
                              "scores need the local engine.")

    # ---- adapters ----------------------------------------------------------------------
    @property
    def adapters(self) -> list[str]:
        ours = {ref for ref, _ in self.wanted.values()}
        others = {a for r in self._healthy() for a in r.adapters if a not in ours}
        return [*sorted(self.wanted), *sorted(others - set(self.wanted))]

    def busy_adapters(self) -> set[str]:
        return {a for r in self.replicas for a in r.busy_adapters()}

    def weights(self) -> None:
        return None  # the replicas hold them, and validate what they load

    def replica_path(self, path: Path) -> str:
        """The folder as the replicas see it (``--replica-adapter-root``: the registry mounted
        elsewhere), else the registry's own path."""
        path = Path(path).resolve()
        if self.adapter_root is None or self.registry_root is None:
            return str(path)
        return str(PurePath(self.adapter_root) / path.relative_to(Path(self.registry_root).resolve()))

    def load_adapter(self, name: str, path: str | Path, timeout: float = 120.0) -> None:
        """Serve the version in ``path`` under ``name`` on every healthy replica."""
        ref = f"{name}@{Path(path).name}"
        self._load_everywhere(ref, Path(path))
        with self._lock:
            self.wanted[name] = (ref, Path(path))

    def replace_adapter(self, name: str, new_path: str | Path, old_path: str | Path,
                        timeout: float = 120.0) -> None:
        """Load the new version everywhere, move ``name`` to it, then unload the old one (the
        service holds the name's new requests back meanwhile)."""
        new_ref, old_ref = f"{name}@{Path(new_path).name}", self.wanted.get(name, ("", None))[0]
        self._load_everywhere(new_ref, Path(new_path))
        with self._lock:
            self.wanted[name] = (new_ref, Path(new_path))
        if old_ref and old_ref != new_ref:
            self._unload_everywhere(old_ref)

    def unload_adapter(self, name: str, drain: bool = False, timeout: float = 60.0) -> None:
        if name not in self.wanted:
            raise UnknownNameError("loaded adapter", name, self.wanted)
        ref, _ = self.wanted.pop(name)
        self._unload_everywhere(ref)

    def _load_everywhere(self, ref: str, path: Path) -> None:
        done = []
        for replica in self._healthy():
            if ref in replica.adapters:
                continue
            try:
                replica.load_adapter(ref, self.replica_path(path))
                done.append(replica)
            except AdapterError as exc:  # a swap is all or nothing: take back what loaded
                for r in done:
                    r.unload_adapter(ref)
                raise AdapterError(f"{replica.base_url} did not load {ref}: {exc.message}") from exc

    def _unload_everywhere(self, ref: str) -> None:
        for replica in self._healthy():
            if ref in replica.adapters:
                try:
                    replica.unload_adapter(ref)
                except AdapterError as exc:
                    log.warning("%s kept %s: %s", replica.base_url, ref, exc.message)

    # ---- health and reconciliation ------------------------------------------------------
    def _probe_loop(self) -> None:
        while not self._stop.wait(PROBE_S):
            for replica in self.replicas:
                self._probe(replica)

    def _probe(self, replica: RemoteBackend) -> None:
        """Re-read the replica's models; bring back what it should serve (after a restart)."""
        try:
            if not replica.alive:  # never reached yet: start its workers once it answers
                replica.start()
            else:
                replica.refresh_models()
            for ref, path in list(self.wanted.values()):
                if ref not in replica.adapters:
                    log.info("%s: loading %s", replica.base_url, ref)
                    replica.load_adapter(ref, self.replica_path(path))
            self._mark(replica, True, "")
        except WorkbenchError as exc:
            self._mark(replica, False, exc.message)

    def _mark(self, replica: RemoteBackend, up: bool, why: str) -> None:
        if self.up[replica.base_url] != up:
            log.warning("replica %s is %s%s", replica.base_url, "up" if up else "down",
                        f": {why}" if why else "")
        self.up[replica.base_url] = up
