"""Running the API with uvicorn: in the foreground (``workbench serve``, ``app.py``) or on a
background thread (tests, notebooks)."""
from __future__ import annotations

import logging
import socket
import threading
import time

import uvicorn
from fastapi import FastAPI

from workbench.errors import WorkbenchError


def uvicorn_config(app: FastAPI, host: str, port: int, log_level: str = "info") -> uvicorn.Config:
    # Refusals are logged once by the API itself; the access log would repeat every request.
    return uvicorn.Config(app, host=host, port=port, log_level=log_level, access_log=False,
                          timeout_graceful_shutdown=5, lifespan="on")


def serve(app: FastAPI, host: str, port: int, log_level: str = "info") -> None:
    """Serve until interrupted; refusals and cancellations are logged one line each."""
    config = uvicorn_config(app, host, port, log_level)  # configures logging: handlers after it
    api_log = logging.getLogger("workbench.api")
    api_log.setLevel(logging.INFO)
    if not api_log.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        api_log.addHandler(handler)
        api_log.propagate = False
    uvicorn.Server(config).run()


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class ServerThread:
    """``with ServerThread(app) as url: ...`` serves ``app`` on a free loopback port."""

    def __init__(self, app: FastAPI, host: str = "127.0.0.1", port: int | None = None,
                 log_level: str = "warning") -> None:
        self.host, self.port = host, port or free_port(host)
        self.server = uvicorn.Server(uvicorn_config(app, self.host, self.port, log_level))
        self.server.install_signal_handlers = lambda: None  # not the main thread
        self.thread = threading.Thread(target=self.server.run, name="api-server", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 30.0) -> str:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise WorkbenchError(f"The API server did not start on {self.url}.")
            time.sleep(0.02)
        return self.url

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(15)

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
