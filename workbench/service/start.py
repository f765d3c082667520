"""Which backend a Workbench runs on: the in-process engine, or a remote OpenAI-compatible
server (``--backend openai --base-url URL``)."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from workbench.adapters.registry import Registry
from workbench.backends.remote import RemoteBackend
from workbench.backends.replicas import ReplicaSet
from workbench.config import EngineConfig, engine_preset
from workbench.engine.request import BASE_NAMES
from workbench.errors import InputError
from workbench.models.catalog import DEFAULT_MODEL
from workbench.service.workbench import Workbench
from workbench.store.chatlog import ChatLog

BACKENDS = ("local", "openai")


def start_workbench(backend: str = "local", base_url: str | Sequence[str] | None = None,
                    api_key: str | None = None, model: str = DEFAULT_MODEL,
                    adapters: list[str] | None = None,
                    engine_config: EngineConfig | None = None,
                    remote_model: str | None = None,
                    replica_adapter_root: Path | None = None,
                    replicated: bool = False) -> Workbench:
    """A running Workbench. With ``backend="openai"`` nothing is loaded here: the variants are
    the server's models, and ``remote_model`` picks its base when it lists several. Several
    base URLs (or one, ``replicated``) are replicas: ``adapters`` (registry refs) are then
    loaded on every one."""
    if backend == "local":
        return Workbench.start(model=model, adapters=adapters, engine_config=engine_config)
    if backend != "openai":
        raise InputError(f"Unknown backend {backend!r}; use one of: {', '.join(BACKENDS)}.")
    urls = [base_url] if isinstance(base_url, str) else list(base_url or [])
    if not urls:
        raise InputError("--backend openai needs --base-url, e.g. http://127.0.0.1:8000/v1.")
    if len(urls) > 1 or replicated:
        return _start_replicas(urls, api_key, engine_config, remote_model, adapters,
                               replica_adapter_root)
    base_url = urls[0]
    remote = RemoteBackend(base_url, api_key, engine_config or engine_preset("interactive"),
                           base_model=remote_model).start()
    wb = Workbench(remote.model_info, remote, Registry(), ChatLog())
    if adapters:
        missing = [a for a in adapters if a not in remote.adapters and a not in BASE_NAMES]
        if missing:
            wb.close()
            raise InputError(f"The backend at {base_url} does not serve {', '.join(missing)}; "
                             f"it serves: {', '.join(remote.adapters) or 'only its base'}.")
    if remote.adapters:
        wb.default_adapter = remote.adapters[0]
    return wb


def _start_replicas(urls: list[str], api_key: str | None, engine_config: EngineConfig | None,
                    remote_model: str | None, adapters: list[str] | None,
                    adapter_root: Path | None) -> Workbench:
    registry = Registry()
    replicas = ReplicaSet(urls, api_key, engine_config or engine_preset("interactive"),
                          base_model=remote_model, adapter_root=adapter_root,
                          registry_root=registry.root).start()
    wb = Workbench(replicas.model_info, replicas, registry, ChatLog())
    try:
        for ref in adapters or []:  # the desired state: every replica serves these versions
            if ref not in BASE_NAMES:
                wb.serve(registry.resolve(ref))
    except BaseException:
        wb.close()
        raise
    if wb.served:
        wb.default_adapter = sorted(wb.served)[0]
    return wb
