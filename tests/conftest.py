"""Shared fixtures: a tmp WORKBENCH_HOME, tiny GLM models, random adapters, engines.

Nothing here touches the network; every model is built in-process from a seed.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
# Tests compare greedy decodes of tiny models at float32's tolerance; those that check
# bfloat16 ask for it (EngineConfig.dtype), whatever this CPU would pick by itself.
os.environ.setdefault("WORKBENCH_DTYPE", "float32")

from workbench.console.quiet import quiet_imports  # noqa: E402

quiet_imports()

from workbench.adapters.demo import make_random_adapter  # noqa: E402
from workbench.adapters.registry import Registry  # noqa: E402
from workbench.store.chatlog import ChatLog  # noqa: E402
from workbench.config import engine_preset  # noqa: E402
from pghelp import Cluster, drop_database, ensure_cluster, new_database  # noqa: E402

from workbench.backends.local import LocalBackend  # noqa: E402
from workbench.engine import Engine  # noqa: E402
from workbench.models.catalog import load_model  # noqa: E402
from workbench.models.loaded import LoadedModel  # noqa: E402
from workbench.service.workbench import Workbench  # noqa: E402
from workbench.store.db import dispose_engine  # noqa: E402


@pytest.fixture
def tmp_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh WORKBENCH_HOME and adapters folder for one test."""
    home = tmp_path / "home"
    monkeypatch.setenv("WORKBENCH_HOME", str(home))
    monkeypatch.delenv("WORKBENCH_DB_URL", raising=False)  # a test opts in through db_url
    monkeypatch.setenv("WORKBENCH_ADAPTERS", str(tmp_path / "adapters"))
    (tmp_path / "adapters").mkdir()
    return home


@pytest.fixture(scope="session")
def pg_cluster() -> Cluster:
    """Debian's PostgreSQL, started for the session if it was down."""
    return ensure_cluster()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_home: Path,
           monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The shared store on a fresh SQLite file, then on a fresh PostgreSQL database
    (``WORKBENCH_DB_URL`` set for everything the test starts)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_home / 'workbench.sqlite'}"
        return
    cluster = request.getfixturevalue("pg_cluster")
    name = new_database(cluster)
    url = cluster.url(name)
    monkeypatch.setenv("WORKBENCH_DB_URL", url)
    try:
        yield url
    finally:
        dispose_engine(url)
        drop_database(cluster, name)


@pytest.fixture
def tiny_loaded() -> LoadedModel:
    return load_model("tiny-glm")


@pytest.fixture
def make_adapter(tmp_path: Path) -> Callable[..., Path]:
    """make_adapter(loaded, name="a1", version="v1", seed=1) -> folder of a random LoRA."""

    def make(loaded: LoadedModel, name: str = "a1", version: str = "v1", seed: int = 1,
             root: Path | None = None) -> Path:
        out = (root or tmp_path / "adapters") / name / version
        return make_random_adapter(loaded.model, out, base_model_id=loaded.model_id, seed=seed,
                                   rank=4)

    return make


@pytest.fixture
def engine(tiny_loaded: LoadedModel) -> Iterator[Engine]:
    eng = Engine(tiny_loaded, engine_preset("test")).start()
    yield eng
    eng.shutdown()


@pytest.fixture
def decode_graphs() -> str:
    """How the ``workbench`` fixture's engine runs decode steps; a module may parametrize it."""
    return engine_preset("test").decode_graphs


@pytest.fixture
def workbench(tmp_home: Path, tiny_loaded: LoadedModel, make_adapter: Callable[..., Path],
              decode_graphs: str) -> Iterator[Workbench]:
    """A running Workbench on tiny-glm with two registered random adapters, a1 and a2."""
    root = Path(os.environ["WORKBENCH_ADAPTERS"])
    make_adapter(tiny_loaded, "a1", "v1", seed=1, root=root)
    make_adapter(tiny_loaded, "a2", "v1", seed=2, root=root)
    eng = LocalBackend(tiny_loaded, engine_preset("test").replace(decode_graphs=decode_graphs)).start()
    wb = Workbench(tiny_loaded, eng, Registry(root), ChatLog())
    wb.load_startup_adapters(None)
    yield wb
    wb.close()


CHROMIUM = os.environ.get("WORKBENCH_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture
def live_app(workbench: Workbench) -> Iterator[str]:
    """The app on the tiny workbench, served on a free loopback port; yields its URL."""
    from workbench.ui.app import build_demo, launch_kwargs

    demo = build_demo(workbench)
    demo.queue(default_concurrency_limit=16)
    _, url, _ = demo.launch(server_name="127.0.0.1", server_port=None, prevent_thread_lock=True,
                            quiet=True, **launch_kwargs())
    yield url.rstrip("/")
    demo.close()


@pytest.fixture
def page(live_app: str):
    """A headless Chromium page (Debian's chromium, driven by Playwright) on the app."""
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (see README)")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        pg = browser.new_page(viewport={"width": 1400, "height": 1000})
        pg.set_default_timeout(60_000)
        pg.goto(live_app)
        yield pg
        browser.close()
