"""Which backend a Workbench runs on: the in-process engine, or a remote OpenAI-compatible
server (``--backend openai --base-url URL``)."""
from __future__ import annotations

from workbench.adapters.registry import Registry
from workbench.backends.remote import RemoteBackend
from workbench.config import EngineConfig, engine_preset
from workbench.engine.request import BASE_NAMES
from workbench.errors import InputError
from workbench.models.catalog import DEFAULT_MODEL
from workbench.service.workbench import Workbench
from workbench.store.chatlog import ChatLog

BACKENDS = ("local", "openai")


def start_workbench(backend: str = "local", base_url: str | None = None,
                    api_key: str | None = None, model: str = DEFAULT_MODEL,
                    adapters: list[str] | None = None,
                    engine_config: EngineConfig | None = None,
                    remote_model: str | None = None) -> Workbench:
    """A running Workbench. With ``backend="openai"`` nothing is loaded here: the variants are
    the server's models, and ``remote_model`` picks its base when it lists several."""
    if backend == "local":
        return Workbench.start(model=model, adapters=adapters, engine_config=engine_config)
    if backend != "openai":
        raise InputError(f"Unknown backend {backend!r}; use one of: {', '.join(BACKENDS)}.")
    if not base_url:
        raise InputError("--backend openai needs --base-url, e.g. http://127.0.0.1:8000/v1.")
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
