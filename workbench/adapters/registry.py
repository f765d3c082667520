"""The adapters folder as a registry: ``adapters/<name>/<version>/`` holds one immutable version.

An adapter is addressed as ``name@version``; ``name`` alone means its newest version.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from workbench.config import adapters_root
from workbench.errors import AdapterError, UnknownNameError

# Files every version folder holds (card.json is written by import/train when missing).
CONFIG_FILE = "adapter_config.json"
WEIGHTS_FILE = "adapter_model.safetensors"
CARD_FILE = "card.json"
# Hidden folder under the root where imports and training runs are assembled, so the final
# move into place is a same-filesystem rename (atomic) and half-written versions never show.
STAGING = ".staging"

SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def version_key(version: str) -> tuple:
    """Natural order: v2 < v10."""
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", version))


def check_safe_name(kind: str, value: str) -> str:
    if not SAFE_NAME.match(value or "") or ".." in value:
        raise AdapterError(f"Invalid adapter {kind} {value!r}: use letters, digits, '-', '_' and "
                           "'.', at most 64 characters, no path separators.")
    return value


def check_new_version(out: Path) -> None:
    """``out`` names a new adapters/NAME/VERSION folder: safe names, not there yet."""
    check_safe_name("name", out.parent.name)
    check_safe_name("version", out.name)
    if out.exists():
        raise AdapterError(f"{out} already exists; versions are immutable, so train into a new "
                           "version folder (e.g. v2).")


def parse_ref(ref: str) -> tuple[str, str | None]:
    """``'cs-support@v2'`` -> ``('cs-support', 'v2')``; ``'cs-support'`` -> ``('cs-support', None)``."""
    name, _, version = ref.partition("@")
    check_safe_name("name", name)
    if version:
        check_safe_name("version", version)
    return name, version or None


@dataclass(frozen=True)
class AdapterVersion:
    """One registered adapter version on disk."""

    # Adapter name (folder under adapters/).
    name: str
    # Version label (folder under the name), e.g. "v1".
    version: str
    # Folder holding adapter_config.json, adapter_model.safetensors and card.json.
    path: Path
    # Parsed card.json ({} when absent).
    card: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def base_model(self) -> str:
        return str(self.card.get("base_model") or self.config.get("base_model_name_or_path") or "")

    @property
    def config(self) -> dict:
        """Parsed adapter_config.json ({} when unreadable)."""
        try:
            return json.loads((self.path / CONFIG_FILE).read_text())
        except (OSError, json.JSONDecodeError):
            return {}

    @property
    def rank(self) -> int | None:
        r = self.config.get("r")
        return int(r) if isinstance(r, int) else None

    @property
    def size_bytes(self) -> int:
        return sum(f.stat().st_size for f in self.path.iterdir() if f.is_file())

    @property
    def created(self) -> str:
        return str(self.card.get("created", ""))

    @property
    def eval_summary(self) -> str:
        """One line from the card's "eval" block: ``regional-policy [3f2a9c1e] 25.0% (n=72) · ...``.

        Per entry it shows the suite, the start of its content hash (entries recorded before
        hashes were kept show none), and the resolution rate (for label suites it equals
        accuracy); cards store proportions, shown as percentages.
        """
        ev = self.card.get("eval") or {}
        if isinstance(ev, str):
            return ev
        parts = []
        for key, value in sorted(ev.items()):
            suite, digest, n = key, "", None
            if isinstance(value, dict):
                suite, digest = str(value.get("suite", key)), str(value.get("suite_hash", ""))
                n = value.get("n")
                value = value.get("resolution_rate", value.get("accuracy", next(iter(value.values()), "")))
            if isinstance(value, float) and 0.0 <= value <= 1.0:
                text = f"{value:.1%}"
            else:
                text = f"{value:.1f}" if isinstance(value, float) else str(value)
            label = f"{suite} [{digest[:8]}]" if digest else suite
            parts.append(f"{label} {text}" + (f" (n={n})" if n else ""))
        return " · ".join(parts)


class Registry:
    """Reads the adapters folder; writing versions is done by import/train (never in place)."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root) if root else adapters_root()

    def names(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir()
                      if p.is_dir() and SAFE_NAME.match(p.name) and self.versions(p.name))

    def versions(self, name: str) -> list[AdapterVersion]:
        folder = self.root / name
        if not folder.is_dir():
            return []
        found = [self._read(name, p) for p in folder.iterdir()
                 if p.is_dir() and SAFE_NAME.match(p.name) and (p / CONFIG_FILE).exists()]
        return sorted(found, key=lambda v: version_key(v.version))

    def _read(self, name: str, path: Path) -> AdapterVersion:
        card_file = path / CARD_FILE
        try:
            card = json.loads(card_file.read_text()) if card_file.exists() else {}
        except json.JSONDecodeError:
            card = {}
        return AdapterVersion(name, path.name, path, card)

    def resolve(self, ref: str) -> AdapterVersion:
        name, version = parse_ref(ref)
        versions = self.versions(name)
        if not versions:
            raise UnknownNameError("adapter", name, self.names())
        if version is None:
            return versions[-1]
        for v in versions:
            if v.version == version:
                return v
        raise UnknownNameError(f"version of adapter '{name}'", version, [v.version for v in versions])

    def all(self) -> list[AdapterVersion]:
        return [v for n in self.names() for v in self.versions(n)]

    # ---- writing (whole versions only; a registered version is never changed) -------------
    def exists(self, name: str, version: str) -> bool:
        return (self.root / name / version).exists()

    def next_version(self, name: str) -> str:
        """``v1`` for a new name, else one past the highest ``vN``."""
        nums = [int(v.version[1:]) for v in self.versions(name)
                if v.version[:1] == "v" and v.version[1:].isdigit()]
        return f"v{max(nums, default=0) + 1}"

    def staging_dir(self, prefix: str = "stage-") -> Path:
        """A fresh folder on the registry's filesystem, for assembling a version."""
        base = self.root / STAGING
        base.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=prefix, dir=base))

    def register(self, folder: Path, name: str, version: str) -> AdapterVersion:
        """Move a complete adapter folder into ``<name>/<version>`` atomically.

        Refuses an existing ``name@version``: versions are immutable, so a new one needs a new
        label. ``folder`` should be on the same filesystem (see :meth:`staging_dir`); otherwise
        it is copied into staging first so the final step is still one rename.
        """
        check_safe_name("name", name)
        check_safe_name("version", version)
        target = self.root / name / version
        if target.exists():
            raise AdapterError(f"Adapter {name}@{version} is already registered; versions are "
                               f"immutable, so register it as {self.next_version(name)} instead.")
        folder = Path(folder)
        if not (folder / CONFIG_FILE).is_file():
            raise AdapterError(f"{folder} has no {CONFIG_FILE}; it is not a PEFT adapter folder.")
        copied = not self._is_staged(folder)
        if copied:
            staged = self.staging_dir()
            shutil.copytree(folder, staged, dirs_exist_ok=True)
            folder = staged
        target.parent.mkdir(parents=True, exist_ok=True)
        make_readable(folder)
        try:
            # os.rename onto a missing path is atomic; a concurrent register of the same
            # version makes it fail instead of merging two folders.
            os.rename(folder, target)
        except OSError as exc:
            if copied:
                shutil.rmtree(folder, ignore_errors=True)
            raise AdapterError(f"Could not register {name}@{version}: {exc}") from exc
        return self._read(name, target)

    def _is_staged(self, folder: Path) -> bool:
        try:
            return folder.resolve().parent == (self.root / STAGING).resolve()
        except OSError:
            return False

    def set_eval_summary(self, ref: str, results: list[dict]) -> AdapterVersion:
        """Record eval results on a version's card; the only card field that may change later.

        Each result is a dict of metric -> number with the ``suite`` name and ``suite_hash``
        (the sha256 of its files). Entries are keyed by both (:func:`eval_key`), so a suite
        folder that reuses a shipped suite's name with other items gets its own entry; only a
        rerun of the very same suite replaces its entry. The weights and the rest of the card
        stay as registered.
        """
        for result in results:
            if not result.get("suite") or not result.get("suite_hash"):
                raise AdapterError("An eval result for a card needs its suite name and suite_hash.")
        version = self.resolve(ref)
        card = dict(version.card)
        ev = dict(card.get("eval") or {})
        for result in results:
            ev[eval_key(ev, result["suite"], result["suite_hash"])] = dict(result)
        card["eval"] = ev
        write_json_atomic(version.path / CARD_FILE, card)
        return self._read(version.name, version.path)


def eval_key(entries: dict, suite: str, suite_hash: str) -> str:
    """``suite@<first 12 hex of its hash>``; longer when another entry already holds that key
    for a different hash, so no two suites ever share an entry."""
    for width in (12, 24, len(suite_hash)):
        key = f"{suite}@{suite_hash[:width]}"
        held = entries.get(key)
        if not isinstance(held, dict) or held.get("suite_hash") in (None, suite_hash):
            return key
    return f"{suite}@{suite_hash}"


def make_readable(folder: Path) -> None:
    """Temp folders are created private (0700); a registered version is readable by all."""
    os.chmod(folder, 0o755)
    for f in folder.iterdir():
        if f.is_file():
            os.chmod(f, 0o644)


def write_json_atomic(path: Path, data: dict) -> None:
    """Write JSON via a temp file and rename, so readers never see half a file."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False), encoding="utf-8")
    os.replace(tmp, path)
