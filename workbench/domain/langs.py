"""The 15 customer languages, the 12 store regions, and example questions for the chat UI."""
from __future__ import annotations

from functools import lru_cache

import yaml
from workbench.config import DATA_ROOT

# code -> (English name, native name)
LANGUAGES: dict[str, tuple[str, str]] = {
    "en": ("English", "English"), "zh": ("Chinese", "中文"), "es": ("Spanish", "Español"),
    "ar": ("Arabic", "العربية"), "fr": ("French", "Français"), "de": ("German", "Deutsch"),
    "pt": ("Portuguese", "Português"), "ru": ("Russian", "Русский"), "ja": ("Japanese", "日本語"),
    "ko": ("Korean", "한국어"), "it": ("Italian", "Italiano"), "tr": ("Turkish", "Türkçe"),
    "id": ("Indonesian", "Bahasa Indonesia"), "vi": ("Vietnamese", "Tiếng Việt"),
    "th": ("Thai", "ไทย"),
}
RTL_LANGUAGES = {"ar"}

REGIONS: dict[str, str] = {
    "EU": "European Union", "GB": "United Kingdom", "US": "United States", "CN": "China",
    "SA": "Saudi Arabia", "AE": "United Arab Emirates", "BR": "Brazil", "MX": "Mexico",
    "JP": "Japan", "KR": "South Korea", "AU": "Australia", "IN": "India",
}

EXAMPLES_FILE = DATA_ROOT / "examples.yaml"
LANG_REGIONS_FILE = DATA_ROOT / "lang_regions.yaml"


def language_name(code: str) -> str:
    return LANGUAGES.get(code, (code, code))[0]


def language_choices() -> list[tuple[str, str]]:
    """(label, code) pairs for a dropdown: "中文 (Chinese)"."""
    return [(f"{native} ({eng})" if native != eng else eng, code)
            for code, (eng, native) in LANGUAGES.items()]


def region_choices() -> list[tuple[str, str]]:
    return [(f"{code} · {name}", code) for code, name in REGIONS.items()]


@lru_cache(maxsize=1)
def _examples() -> dict[str, list[str]]:
    if not EXAMPLES_FILE.exists():
        return {}
    return yaml.safe_load(EXAMPLES_FILE.read_text(encoding="utf-8")) or {}


def example_questions(lang: str) -> list[str]:
    return list(_examples().get(lang, []))


@lru_cache(maxsize=1)
def _lang_regions() -> dict[str, str]:
    return yaml.safe_load(LANG_REGIONS_FILE.read_text(encoding="utf-8")) or {}


def suggested_region(lang: str) -> str | None:
    """The region to suggest for a customer language, or None where no one region fits."""
    region = _lang_regions().get(lang)
    return region if region in REGIONS else None
