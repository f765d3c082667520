"""Run the test suite against the newest releases the pyproject ranges allow.

The README's commands and CI install the locked set (``requirements.lock``), so a new release
upstream can never turn CI red. This command shows what such a release *would* do, without
touching the environment you work in::

    python -m workbench.devtools.check_latest            # venv under WORKBENCH_HOME, report
    python -m workbench.devtools.check_latest --json -k "awq or engine"

It builds a separate virtual environment, installs the project there with ``pip install -U``
and no lock (pip takes the newest release inside every range; torch stays pinned; with
``--release-pins`` the other exact pins, such as gptqmodel's, move to their newest too), lists each
package whose version differs from the lock, runs pytest, and for every failing test puts the
upgraded direct dependencies back to their locked versions one at a time to find which upgrade
breaks it. Exit code: 0 when the suite passes on the newest releases, 1 when it does not.
"""
from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tomllib
import venv
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass, field
from pathlib import Path

from workbench.config import REPO_ROOT, workbench_home

LOCK = REPO_ROOT / "requirements.lock"


@dataclass
class Report:
    """What the newest releases change, and which of them break which tests."""

    # Packages whose newest allowed release differs from the lock: name -> [locked, newest].
    upgrades: dict[str, list[str | None]] = field(default_factory=dict)
    # Tests run and failed on the newest releases.
    tests_run: int = 0
    failed: list[str] = field(default_factory=list)
    # Failing test -> upgraded packages whose locked version makes it pass again.
    culprits: dict[str, list[str]] = field(default_factory=dict)
    # Failing tests no single downgrade fixes.
    unexplained: list[str] = field(default_factory=list)


def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def read_lock(path: Path = LOCK) -> dict[str, str]:
    """name -> version of every ``name==version`` line of a pip-compile lock."""
    pins: dict[str, str] = {}
    for line in path.read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9_.\-]+)==([^\s;]+)", line.strip())
        if m:
            pins[norm(m.group(1))] = m.group(2)
    return pins


def direct_dependencies(pyproject: Path = REPO_ROOT / "pyproject.toml") -> set[str]:
    """Names in the project's dependencies and extras (the ranges this check exercises)."""
    project = tomllib.loads(pyproject.read_text())["project"]
    specs = list(project.get("dependencies", []))
    for extra in project.get("optional-dependencies", {}).values():
        specs.extend(extra)
    return {norm(re.split(r"[\s<>=!~\[;]", s, maxsplit=1)[0]) for s in specs}


def exact_pins(pyproject: Path = REPO_ROOT / "pyproject.toml") -> list[str]:
    """Direct dependencies pinned with ``==`` (torch aside: its pin picks the CPU build)."""
    project = tomllib.loads(pyproject.read_text())["project"]
    specs = list(project.get("dependencies", []))
    for extra in project.get("optional-dependencies", {}).values():
        specs.extend(extra)
    names = [norm(s.split("==")[0].strip()) for s in specs if "==" in s]
    return [n for n in names if n != "torch"]


def installed(python: Path) -> dict[str, str]:
    out = subprocess.run([str(python), "-m", "pip", "list", "--format", "json"],
                         check=True, capture_output=True, text=True).stdout
    return {norm(p["name"]): p["version"] for p in json.loads(out)}


def diff_versions(locked: dict[str, str], newest: dict[str, str]) -> dict[str, list[str | None]]:
    """Packages whose version differs (the project itself excluded)."""
    names = (set(locked) | set(newest)) - {"glm-support-workbench", "pip", "setuptools", "wheel"}
    return {n: [locked.get(n), newest.get(n)] for n in sorted(names)
            if locked.get(n) != newest.get(n) and newest.get(n) is not None}


def pytest_failures(python: Path, args: list[str], junit: Path) -> tuple[int, list[str]]:
    """Run pytest in the venv; (tests run, node ids that failed or errored)."""
    subprocess.run([str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider",
                    f"--junitxml={junit}", *args], cwd=REPO_ROOT)
    return parse_junit(junit)


def parse_junit(junit: Path) -> tuple[int, list[str]]:
    if not junit.exists():
        return 0, ["<pytest did not run>"]
    root = ET.parse(junit).getroot()
    run, failed = 0, []
    for case in root.iter("testcase"):
        if case.find("skipped") is not None:
            continue
        run += 1
        if case.find("failure") is not None or case.find("error") is not None:
            path = case.get("classname", "").replace(".", "/") + ".py"
            failed.append(f"{path}::{case.get('name')}")
    return run, failed


def pip(python: Path, *args: str) -> None:
    subprocess.run([str(python), "-m", "pip", "install", "-q", *args], check=True, cwd=REPO_ROOT)


def find_culprits(python: Path, report: Report, junit: Path) -> None:
    """Downgrade each upgraded direct dependency alone; a failing test that then passes names it."""
    direct = direct_dependencies()
    suspects = [n for n in report.upgrades if n in direct and report.upgrades[n][0]]
    left = set(report.failed)
    for name in suspects:
        if not left:
            break
        locked, newest = report.upgrades[name]
        pip(python, f"{name}=={locked}")
        try:
            _, still = pytest_failures(python, sorted(left), junit)
        finally:
            pip(python, f"{name}=={newest}")
        for test in left - set(still):
            report.culprits.setdefault(test, []).append(name)
        left &= set(still)
    report.unexplained = sorted(left)


def check(venv_dir: Path, extras: str, pytest_args: list[str], release_pins: bool) -> Report:
    if not (venv_dir / "bin" / "python").exists():
        venv.create(venv_dir, with_pip=True)
    python = venv_dir / "bin" / "python"
    pip(python, "-U", "-e", f".[{extras}]")
    if release_pins and exact_pins():
        pip(python, "-U", *exact_pins())
    report = Report(upgrades=diff_versions(read_lock(), installed(python)))
    junit = venv_dir / "junit.xml"
    report.tests_run, report.failed = pytest_failures(python, pytest_args, junit)
    if report.failed:
        find_culprits(python, report, junit)
    return report


def print_report(report: Report) -> None:
    print(f"\n{len(report.upgrades)} packages newer than the lock:")
    for name, (old, new) in report.upgrades.items():
        print(f"  {name}: {old or '(not locked)'} -> {new}")
    print(f"{report.tests_run} tests run on the newest releases, {len(report.failed)} failed.")
    for test, names in report.culprits.items():
        print(f"  {test}: broken by {', '.join(names)}")
    for test in report.unexplained:
        print(f"  {test}: fails with no single upgrade to blame (or fails on the lock too)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--venv", type=Path, default=None,
                    help="virtual environment to use (default: WORKBENCH_HOME/check-latest-venv)")
    ap.add_argument("--extras", default="awq,test")
    ap.add_argument("--release-pins", action="store_true",
                    help="also move exact pins other than torch's (e.g. gptqmodel) to their newest")
    ap.add_argument("--json", action="store_true", help="print the report as JSON")
    args, pytest_args = ap.parse_known_args(argv)
    report = check(args.venv or workbench_home() / "check-latest-venv", args.extras, pytest_args,
                   args.release_pins)
    if args.json:
        print(json.dumps(asdict(report), indent=2))
    else:
        print_report(report)
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
