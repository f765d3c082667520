"""The README stays a short front door, and every link in it and in docs/ leads somewhere."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from workbench.config import REPO_ROOT

README = REPO_ROOT / "README.md"
DOCS = sorted((REPO_ROOT / "docs").glob("*.md"))
README_MAX_BYTES = 10_240
# The README's install-and-start command; the test command is .ci/run's last line.
INSTALL_COMMAND = 'pip install -c requirements.lock -e ".[awq]" && python app.py'

FENCE = re.compile(r"^(```|~~~).*?^\1", re.S | re.M)
INLINE_CODE = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"!?\[[^\]\n]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def prose(text: str) -> str:
    """Markdown without code: links are only read outside fences and inline code."""
    return INLINE_CODE.sub("", FENCE.sub("", text))


def links(path: Path) -> list[str]:
    return LINK.findall(prose(path.read_text(encoding="utf-8")))


def relative(target: str) -> bool:
    return not re.match(r"^(https?:|mailto:|#)", target)


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading."""
    text = INLINE_CODE.sub(lambda m: m.group(0).strip("`"), heading.strip()).lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    heads = re.findall(r"^#{1,6}\s+(.+?)\s*#*\s*$", FENCE.sub("", path.read_text(encoding="utf-8")),
                       re.M)
    return {slug(h) for h in heads}


def test_readme_is_a_short_front_door() -> None:
    size = len(README.read_bytes())
    assert size <= README_MAX_BYTES, f"README.md is {size} bytes; move detail into docs/"


@pytest.mark.parametrize("doc", [README, *DOCS], ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_every_relative_link_resolves(doc: Path) -> None:
    missing = []
    for target in filter(relative, links(doc)):
        file_part = target.split("#", 1)[0]
        if not (doc.parent / file_part).exists():
            missing.append(target)
    assert not missing, f"{doc.name} links to files that do not exist: {missing}"


@pytest.mark.parametrize("doc", [README, *DOCS], ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_every_anchor_names_a_heading(doc: Path) -> None:
    broken = []
    for target in links(doc):
        if target.startswith(("http:", "https:", "mailto:")) or "#" not in target:
            continue
        file_part, anchor = target.split("#", 1)
        dest = (doc.parent / file_part) if file_part else doc
        if dest.suffix == ".md" and dest.exists() and anchor not in anchors(dest):
            broken.append(target)
    assert not broken, f"{doc.name} links to headings that do not exist: {broken}"


def test_readme_has_both_setup_commands() -> None:
    readme = README.read_text(encoding="utf-8")
    commands = re.findall(r"```bash\n(.*?)\n```", readme, re.S)[:2]
    ci = (REPO_ROOT / ".ci" / "run").read_text().strip().splitlines()[-1]
    assert commands == [INSTALL_COMMAND, ci], \
        "the README's first two bash blocks must be the install command and .ci/run's test command"
    setup = readme.split("## Set-up on a fresh machine", 1)
    assert len(setup) == 2 and INSTALL_COMMAND in setup[1] and ci in setup[1]


def test_readme_embeds_the_chat_screenshot() -> None:
    assert "docs/img/chat.png" in links(README)
