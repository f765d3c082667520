"""The deflection patterns file: read beside the suites, never taken for one, named when broken."""
from __future__ import annotations

from pathlib import Path

import pytest

from workbench.config import eval_sets_root
from workbench.errors import SuiteError
from workbench.eval.deflection import find_deflections, load_patterns, patterns_file
from workbench.eval.suite import list_suites, load_suite


def test_patterns_live_beside_the_suites_and_are_not_one() -> None:
    assert patterns_file() == eval_sets_root() / "deflection.yaml"
    assert patterns_file().is_file()
    assert "deflection.yaml" not in list_suites() and "deflection" not in list_suites()
    assert all(load_suite(name) for name in list_suites())
    assert {lang for lang, _, _ in load_patterns(patterns_file())} >= {"en", "zh", "ar", "th"}


def test_every_kind_is_found() -> None:
    found = find_deflections("As an AI, I can't help with that. Please contact customer service.")
    assert {(d.kind, d.lang) for d in found} == {("ai", "en"), ("refusal", "en"), ("redirect", "en")}
    assert find_deflections("Sorry, this item cannot be returned.") == []


@pytest.mark.parametrize("text, message", [
    ("en: [unclosed\n", r"deflection\.yaml:\d+: invalid YAML"),
    ("- a\n- b\n", r"deflection\.yaml: must map each language code"),
    ("xx: {ai: [x]}\n", r"deflection\.yaml: Unknown language 'xx'"),
    ("en: {rude: [x]}\n", r"deflection\.yaml: en: Unknown kind 'rude'"),
    ("en: {ai: []}\n", r"deflection\.yaml: en\.ai: must be a non-empty list"),
    ("en: {ai: [ok, 3]}\n", r"deflection\.yaml: en\.ai\[1\]: must be a non-empty string"),
    ("en: {ai: ['(unclosed']}\n", r"deflection\.yaml: en\.ai\[0\]: invalid regular expression"),
])
def test_malformed_file_is_named(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "deflection.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SuiteError, match=message):
        load_patterns(path)


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(SuiteError, match=r"deflection\.yaml: cannot read the deflection patterns"):
        load_patterns(tmp_path / "deflection.yaml")
