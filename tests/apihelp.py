"""A tiny-model Workbench behind the real API on a free loopback port, for the API tests."""
from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from workbench.adapters.registry import Registry
from workbench.api.app import create_api
from workbench.api.auth import APISettings
from workbench.api.server import ServerThread
from workbench.store.chatlog import ChatLog
from workbench.config import EngineConfig
from workbench.backends.local import LocalBackend
from workbench.models.loaded import LoadedModel
from workbench.service.workbench import Workbench

ADMIN = "admin-secret-token"
KEY = "inference-key"
# Room for 64 concurrent clients; short waits so tests stay quick.
API_ENGINE = EngineConfig(max_batch_size=16, max_wait_ms=5.0, max_queue=128, min_prefix_tokens=4)


@dataclass
class Served:
    wb: Workbench
    url: str
    settings: APISettings

    @property
    def v1(self) -> str:
        return self.url + "/v1"


@contextlib.contextmanager
def serve_tiny(loaded: LoadedModel, make_adapter: Callable[..., Path], *,
               config: EngineConfig = API_ENGINE, admin_token: str | None = ADMIN,
               api_key: str | None = None, settings: APISettings | None = None,
               adapters: tuple[str, ...] = ("a1",)) -> Iterator[Served]:
    """Serve a Workbench on ``loaded`` with the named random adapters registered and loaded."""
    root = Path(os.environ["WORKBENCH_ADAPTERS"])
    for i, name in enumerate(adapters, start=1):
        make_adapter(loaded, name, "v1", seed=i, root=root)
    engine = LocalBackend(loaded, config).start()
    wb = Workbench(loaded, engine, Registry(root), ChatLog(), admin_token=admin_token)
    wb.load_startup_adapters(None)
    settings = settings or APISettings(api_key=api_key)
    server = ServerThread(create_api(wb, settings))
    try:
        yield Served(wb, server.start(), settings)
    finally:
        server.stop()
        wb.close()


def ask(text: str = "Where is my order?") -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]
