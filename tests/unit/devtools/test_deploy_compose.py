"""The one-host deployment file: the services the operations guide names, wired as it says
(`docker compose config` checks it too where the docker CLI exists)."""
from __future__ import annotations

import shutil
import subprocess

import yaml

from workbench.config import REPO_ROOT

COMPOSE = REPO_ROOT / "deploy" / "compose.yaml"


def test_compose_has_replicas_workbench_store_and_metrics() -> None:
    spec = yaml.safe_load(COMPOSE.read_text())
    services = spec["services"]
    assert {"vllm-a", "vllm-b", "postgres", "workbench", "prometheus"} <= set(services)
    command = services["workbench"]["command"]
    assert command[:2] == ["workbench", "serve"]
    assert sum(arg.startswith("--base-url=http://vllm-") for arg in command) == 2
    assert services["workbench"]["environment"]["WORKBENCH_DB_URL"].startswith("postgresql+psycopg://")
    for name in ("vllm-a", "vllm-b"):
        vllm = services[name]
        assert vllm["environment"]["VLLM_ALLOW_RUNTIME_LORA_UPDATING"] == "True"
        assert "--enable-lora" in vllm["command"] and "ports" not in vllm  # private only
    assert spec["networks"]["private"]["internal"] is True
    assert (REPO_ROOT / "deploy" / "prometheus.yml").is_file()


def test_docker_compose_accepts_it_where_docker_exists(monkeypatch) -> None:
    if shutil.which("docker") is None or subprocess.run(
            ["docker", "compose", "version"], capture_output=True, timeout=30).returncode != 0:
        return  # no docker compose on this machine: the structure test above still ran
    env = {"VLLM_API_KEY": "k", "WORKBENCH_API_KEY": "k", "WORKBENCH_ADMIN_TOKEN": "t",
           "POSTGRES_PASSWORD": "p", "MODEL_DIR": "/models"}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    subprocess.run(["docker", "compose", "-f", str(COMPOSE), "config", "-q"], check=True, timeout=60)
