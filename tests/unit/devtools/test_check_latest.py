"""The lock and the newest-releases check (no network: pip and pytest are faked)."""
from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

from workbench.config import REPO_ROOT
from workbench.devtools import check_latest as cl


def _project_requirements() -> list[Requirement]:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    specs = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        specs.extend(extra)
    return [Requirement(s) for s in specs]


def test_lock_pins_every_dependency_inside_its_range() -> None:
    lock = cl.read_lock()
    assert "pip-compile" in (REPO_ROOT / "requirements.lock").read_text()[:600]
    for req in _project_requirements():
        name = cl.norm(req.name)
        assert name in lock, f"{name} is in pyproject.toml but not in requirements.lock"
        assert req.specifier.contains(Version(lock[name]), prereleases=True), \
            f"{name}=={lock[name]} is outside pyproject's {req.specifier}: regenerate the lock"


def test_lock_takes_the_cpu_build_of_torch() -> None:
    assert cl.read_lock()["torch"].endswith("+cpu")
    assert not any(n.startswith("nvidia-") for n in cl.read_lock())


def test_readme_commands_and_ci_install_through_the_lock() -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    commands = re.findall(r"```bash\n(.*?)\n```", readme, re.S)[:2]
    assert len(commands) == 2 and all("-c requirements.lock" in c for c in commands)
    ci = (REPO_ROOT / ".ci" / "run").read_text().strip().splitlines()[-1]
    assert ci == commands[1], ".ci/run must be the README's test command"


def test_read_lock_and_diff(tmp_path: Path) -> None:
    lock = tmp_path / "requirements.lock"
    lock.write_text("# header\nTorch==2.13.0+cpu\n    # via x\npeft==0.21.2 ; python_version>'3'\n"
                    "typing_extensions==4.0\n")
    pins = cl.read_lock(lock)
    assert pins == {"torch": "2.13.0+cpu", "peft": "0.21.2", "typing-extensions": "4.0"}
    newest = {"torch": "2.13.0+cpu", "peft": "0.22.0", "typing-extensions": "4.0", "new-dep": "1.0",
              "glm-support-workbench": "0.1.0"}
    assert cl.diff_versions(pins, newest) == {"new-dep": [None, "1.0"], "peft": ["0.21.2", "0.22.0"]}


def test_parse_junit(tmp_path: Path) -> None:
    junit = tmp_path / "j.xml"
    junit.write_text(
        '<testsuites><testsuite><testcase classname="tests.test_a" name="test_ok"/>'
        '<testcase classname="tests.test_a" name="test_bad"><failure/></testcase>'
        '<testcase classname="tests.test_b" name="test_err[x]"><error/></testcase>'
        '<testcase classname="tests.test_b" name="test_skip"><skipped/></testcase>'
        '</testsuite></testsuites>')
    assert cl.parse_junit(junit) == (3, ["tests/test_a.py::test_bad", "tests/test_b.py::test_err[x]"])
    assert cl.parse_junit(tmp_path / "missing.xml") == (0, ["<pytest did not run>"])


def test_find_culprits_downgrades_one_package_at_a_time(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    # Fake world: peft's upgrade breaks test_x, nothing explains test_y.
    current = {"peft": "0.22.0", "gradio": "6.40.0"}
    installs: list[str] = []

    def fake_pip(python: Path, *args: str) -> None:
        name, version = args[-1].split("==")
        current[name] = version
        installs.append(args[-1])

    def fake_pytest(python: Path, args: list[str], junit: Path) -> tuple[int, list[str]]:
        failing = {"t::test_y"} | ({"t::test_x"} if current["peft"] == "0.22.0" else set())
        return len(args), sorted(failing & set(args))

    monkeypatch.setattr(cl, "pip", fake_pip)
    monkeypatch.setattr(cl, "pytest_failures", fake_pytest)
    report = cl.Report(upgrades={"peft": ["0.21.2", "0.22.0"], "gradio": ["6.31.0", "6.40.0"],
                                 "not-direct": ["1", "2"]},
                       failed=["t::test_x", "t::test_y"])
    cl.find_culprits(Path("python"), report, tmp_path / "j.xml")
    assert report.culprits == {"t::test_x": ["peft"]}
    assert report.unexplained == ["t::test_y"]
    assert current == {"peft": "0.22.0", "gradio": "6.40.0"}, "every downgrade is undone"
    assert "not-direct==1" not in installs
