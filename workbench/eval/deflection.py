"""Generic deflection phrasing in the 15 customer languages.

Three kinds, matched on normalised text (see ``textnorm.normalize``) so case, full-width forms
and curly apostrophes do not matter:

- ``redirect``: "please contact customer service" instead of an answer;
- ``refusal``: "I can't help with that";
- ``ai``: "as an AI / language model".

The patterns are data: ``workbench/data/eval_sets/deflection.yaml``, one key per language. Refusals
are phrased as "can't *help/answer*", never "can't" alone: a correct policy answer says "this
item cannot be returned", which is not a deflection.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

from workbench.config import eval_sets_root
from workbench.domain.langs import LANGUAGES
from workbench.errors import SuiteError, unknown_name_message
from workbench.eval.textnorm import normalize

KINDS = ("redirect", "refusal", "ai")


@dataclass(frozen=True)
class Deflection:
    """The first deflecting phrase found in an answer."""

    # "redirect", "refusal" or "ai".
    kind: str
    # Language whose phrase list matched.
    lang: str
    # The matched text (normalised).
    phrase: str


def patterns_file() -> Path:
    return eval_sets_root() / "deflection.yaml"


def load_patterns(path: Path) -> list[tuple[str, str, re.Pattern[str]]]:
    """(language, kind, compiled pattern) in file order; SuiteError naming the file and the
    entry at fault when it is unreadable or malformed."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SuiteError(f"{path}: cannot read the deflection patterns ({exc.strerror}).") from exc
    except UnicodeDecodeError as exc:
        raise SuiteError(f"{path}: not UTF-8 ({exc.reason}).") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise SuiteError(f"{where}: invalid YAML: {getattr(exc, 'problem', exc)}.") from exc
    if not isinstance(data, dict) or not data:
        raise SuiteError(f"{path}: must map each language code to its kinds of deflection "
                         f"({', '.join(KINDS)}).")
    return [entry for lang, kinds in data.items() for entry in _compile_lang(path, lang, kinds)]


def _compile_lang(path: Path, lang: object, kinds: object) -> list[tuple[str, str, re.Pattern[str]]]:
    if lang not in LANGUAGES:
        raise SuiteError(f"{path}: {unknown_name_message('language', str(lang), list(LANGUAGES))}")
    if not isinstance(kinds, dict):
        raise SuiteError(f"{path}: {lang}: must map kinds ({', '.join(KINDS)}) to lists of patterns.")
    out = []
    for kind, pats in kinds.items():
        if kind not in KINDS:
            raise SuiteError(f"{path}: {lang}: {unknown_name_message('kind', str(kind), list(KINDS))}")
        if not isinstance(pats, list) or not pats:
            raise SuiteError(f"{path}: {lang}.{kind}: must be a non-empty list of patterns.")
        for i, pat in enumerate(pats):
            if not isinstance(pat, str) or not pat:
                raise SuiteError(f"{path}: {lang}.{kind}[{i}]: must be a non-empty string, not {pat!r}.")
            try:
                # NFKC like the answers, so a pattern typed in decomposed form still matches.
                out.append((lang, kind, re.compile(unicodedata.normalize("NFKC", pat))))
            except re.error as exc:
                raise SuiteError(f"{path}: {lang}.{kind}[{i}]: invalid regular expression "
                                 f"{pat!r}: {exc}.") from exc
    return out


@lru_cache(maxsize=1)
def _compiled() -> list[tuple[str, str, re.Pattern[str]]]:
    return load_patterns(patterns_file())


def find_deflections(text: str) -> list[Deflection]:
    """Every deflecting phrase of any language in ``text`` (answers may be in the wrong one)."""
    norm = normalize(text)
    return [Deflection(kind, lang, m.group(0)) for lang, kind, pat in _compiled()
            if (m := pat.search(norm))]
