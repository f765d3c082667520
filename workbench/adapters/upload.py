"""Import an adapter from a zip (UI upload, ``workbench adapters import``) or a folder.

The archive is unpacked into a staging folder inside the registry root, never next to real
versions, with zip-slip protection: absolute paths, ``..``, drive letters, symlinks, too many
files and too many uncompressed bytes are refused before a byte is written. The adapter is
validated there against the loaded base, and only a complete, valid version is moved into
``<name>/<version>`` with one rename. Whatever fails, the staging folder is removed and the
registry is as it was.
"""
from __future__ import annotations

import hashlib
import json
import re
import shutil
import stat
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from workbench.adapters.registry import (
    CARD_FILE,
    CONFIG_FILE,
    WEIGHTS_FILE,
    AdapterVersion,
    Registry,
    check_safe_name,
)
from workbench.adapters.validate import read_config, read_shapes
from workbench.errors import AdapterError, InputError

# Files kept from an upload; anything else (READMEs of other tools, checkpoints) is dropped.
KEEP = (CONFIG_FILE, WEIGHTS_FILE, CARD_FILE, "README.md")
MiB = 1 << 20
# Longest file or folder name a filesystem takes, and the longest member path accepted (an
# adapter zip holds a few files, at most two folders deep).
MAX_NAME_BYTES = 255
MAX_MEMBER_BYTES = 1024


@dataclass(frozen=True)
class UploadLimits:
    """Bounds on what an upload may contain."""

    # Size of the zip file itself.
    max_archive_bytes: int = 200 * MiB
    # Sum of the uncompressed sizes of all members (zip bombs stop here).
    max_total_bytes: int = 400 * MiB
    # Number of members, folders included.
    max_files: int = 32


def import_adapter(registry: Registry, source: str | Path,
                   validate: Callable[[Path], object] | None,
                   name: str | None = None, version: str | None = None,
                   limits: UploadLimits = UploadLimits()) -> AdapterVersion:
    """Register the adapter in ``source`` (a .zip or a folder) as ``name@version``.

    ``name``/``version`` default to the card's fields, then to ``<name>/<version>/`` folders
    inside the archive; the version defaults to the next free ``vN``. With ``validate`` (a
    backend's ``validate_adapter``) the adapter is fully validated against the base that
    serves it; without, only its files are checked.
    """
    source = Path(source)
    kind = _source_kind(source)
    staging = registry.staging_dir("upload-")
    try:
        raw = staging / "raw"
        if kind == "folder":
            _copy_folder(source, raw, limits)
        elif kind == "file":
            safe_extract(source, raw, limits)
        else:
            raise InputError(f"No such file or folder: {source}")
        folder = _find_adapter(raw)
        name, version = _pick_ref(registry, folder, raw, name, version)
        folder = _named_as_given(folder, raw, staging, source)
        if validate is not None:
            validate(folder)
        else:
            read_config(folder)
            read_shapes(folder)
        # Assembled directly in the staging area, so register() is a single rename.
        final = registry.staging_dir("ready-")
        try:
            _assemble(folder, final, source.name)
            return registry.register(final, name, version)
        finally:
            shutil.rmtree(final, ignore_errors=True)  # gone already when the rename worked
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _source_kind(source: Path) -> str | None:
    """"folder", "file" or None (not there); InputError for a path no filesystem could hold."""
    try:
        return "folder" if source.is_dir() else "file" if source.is_file() else None
    except OSError as exc:  # ENAMETOOLONG and the like: refused before anything is written
        shown = str(source) if len(str(source)) <= 80 else f"{str(source)[:60]}…"
        raise InputError(f"Cannot read {shown}: {exc.strerror or exc}.") from exc


def check_member_name(member: str) -> PurePosixPath:
    """The archive path as relative parts, or InputError for anything that could escape."""
    longest = max((len(p.encode("utf-8", "surrogatepass")) for p in member.split("/")), default=0)
    if longest > MAX_NAME_BYTES or len(member.encode("utf-8", "surrogatepass")) > MAX_MEMBER_BYTES:
        shown = member if len(member) <= 60 else f"{member[:60]}…"
        raise InputError(f"Refused upload: member {shown!r} has a path over {MAX_MEMBER_BYTES} "
                         f"bytes or a name over {MAX_NAME_BYTES} bytes.")
    if "\x00" in member or "\\" in member:
        raise InputError(f"Refused upload: member {member!r} has a backslash or NUL in its path.")
    if member.startswith("/") or re.match(r"^[A-Za-z]:", member):
        raise InputError(f"Refused upload: member {member!r} has an absolute path.")
    path = PurePosixPath(member)
    if any(part == ".." for part in path.parts):
        raise InputError(f"Refused upload: member {member!r} points outside the archive ('..').")
    return path


def safe_extract(archive: Path, dest: Path, limits: UploadLimits) -> None:
    """Unpack ``archive`` into ``dest`` after checking every member; all or nothing."""
    if archive.stat().st_size > limits.max_archive_bytes:
        raise InputError(f"Refused upload: the archive is larger than "
                         f"{limits.max_archive_bytes // MiB} MiB.")
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as exc:
        raise InputError(f"Refused upload: {archive.name} is not a valid zip file ({exc}).") from exc
    with zf:
        members = zf.infolist()
        _check_members(members, limits)
        dest.mkdir(parents=True, exist_ok=True)
        root = dest.resolve()
        for info in members:
            target = (dest / check_member_name(info.filename)).resolve()
            if root != target and root not in target.parents:
                raise InputError(f"Refused upload: member {info.filename!r} escapes the folder.")
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                with zf.open(info) as src, target.open("wb") as out:
                    shutil.copyfileobj(src, out, MiB)
            except (zipfile.BadZipFile, OSError, RuntimeError) as exc:
                raise InputError(f"Refused upload: member {info.filename!r} is damaged ({exc}).") from exc


def _check_members(members: list[zipfile.ZipInfo], limits: UploadLimits) -> None:
    if len(members) > limits.max_files:
        raise InputError(f"Refused upload: {len(members)} files in the archive, at most "
                         f"{limits.max_files} allowed.")
    total = 0
    for info in members:
        check_member_name(info.filename)
        mode = info.external_attr >> 16
        if stat.S_ISLNK(mode):
            raise InputError(f"Refused upload: member {info.filename!r} is a symbolic link.")
        total += info.file_size
    if total > limits.max_total_bytes:
        raise InputError(f"Refused upload: {total / MiB:.0f} MiB uncompressed, at most "
                         f"{limits.max_total_bytes // MiB} MiB allowed.")


def _copy_folder(source: Path, dest: Path, limits: UploadLimits) -> None:
    files = list(source.rglob("*"))
    if len(files) > limits.max_files:
        raise InputError(f"Refused import: {len(files)} files in {source}, at most {limits.max_files}.")
    links = [f for f in files if f.is_symlink()]
    if links:
        raise InputError(f"Refused import: {links[0]} is a symbolic link.")
    if sum(f.stat().st_size for f in files if f.is_file()) > limits.max_total_bytes:
        raise InputError(f"Refused import: {source} is larger than {limits.max_total_bytes // MiB} MiB.")
    shutil.copytree(source, dest)


def _find_adapter(raw: Path) -> Path:
    found = sorted(p.parent for p in raw.rglob(CONFIG_FILE) if p.is_file())
    if not found:
        raise AdapterError(f"The upload holds no {CONFIG_FILE}; zip the adapter folder "
                           f"({CONFIG_FILE}, {WEIGHTS_FILE}, optional {CARD_FILE}).")
    if len(found) > 1:
        raise AdapterError(f"The upload holds {len(found)} adapters; upload one at a time.")
    return found[0]


def _named_as_given(folder: Path, raw: Path, staging: Path, source: Path) -> Path:
    """Move the adapter folder to one named for what the user gave.

    Validation starts each refusal with the name of the folder it checks; here that would be a
    staging name ("raw", or the "v1" folder inside the zip) that means nothing to the person
    who uploaded. Named "cs-support.zip" (or "bundle.zip › cs-support › v1" for a folder inside
    the zip), the refusal reads "cs-support.zip: adapter_config.json ...".
    """
    given = source.resolve().name or "the upload"
    label = " › ".join([given, *folder.relative_to(raw).parts])
    if len(label.encode("utf-8")) > 200:  # file names stop at 255 bytes
        label = given if len(given.encode("utf-8")) <= 200 else "the upload"
    target = staging / "given" / label
    target.parent.mkdir()
    folder.rename(target)
    return target


def _pick_ref(registry: Registry, folder: Path, raw: Path, name: str | None,
              version: str | None) -> tuple[str, str]:
    card = _read_card(folder)
    rel = folder.relative_to(raw).parts
    name = name or card.get("name") or (rel[-2] if len(rel) >= 2 else None)
    if not name:
        raise InputError("Give the adapter a name (the upload has no card.json name and no "
                         "<name>/<version>/ folders).")
    check_safe_name("name", str(name))
    version = version or card.get("version") or (rel[-1] if len(rel) >= 2 else None)
    version = str(version or registry.next_version(str(name)))
    check_safe_name("version", version)
    if registry.exists(str(name), version):
        raise AdapterError(f"Adapter {name}@{version} is already registered; versions are "
                           f"immutable. Import it as {name}@{registry.next_version(str(name))}.")
    return str(name), version


def _read_card(folder: Path) -> dict:
    try:
        card = json.loads((folder / CARD_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise AdapterError(f"{CARD_FILE} in the upload is not valid JSON ({exc}).") from exc
    if not isinstance(card, dict):
        raise AdapterError(f"{CARD_FILE} in the upload must hold a JSON object.")
    return card


def _assemble(folder: Path, final: Path, source_name: str) -> None:
    """Copy the kept files into ``final`` and complete the card (base, import time, sha256)."""
    final.mkdir(exist_ok=True)
    for fname in KEEP:
        if (folder / fname).is_file():
            shutil.copy2(folder / fname, final / fname)
    card = _read_card(final)
    config = json.loads((final / CONFIG_FILE).read_text(encoding="utf-8"))
    card.setdefault("base_model", config.get("base_model_name_or_path"))
    card.setdefault("created", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    card["imported"] = {"from": source_name,
                        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                        "weights_sha256": _sha256(final / WEIGHTS_FILE)}
    card.pop("name", None)
    card.pop("version", None)  # the folder is the truth once registered
    (final / CARD_FILE).write_text(json.dumps(card, indent=2, ensure_ascii=False), encoding="utf-8")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(MiB), b""):
            digest.update(chunk)
    return digest.hexdigest()
