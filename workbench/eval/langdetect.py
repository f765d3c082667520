"""Which of the 15 customer languages an answer is written in.

Scripts decide first: among our languages Cyrillic is only Russian, Arabic script only Arabic,
Thai only Thai, Hangul only Korean, and kana marks Japanese. Only Latin-script answers (nine
languages) need a statistical detector: lingua, offline, restricted to the 15 languages so it
cannot answer with one we do not serve.
"""
from __future__ import annotations

import re
import unicodedata
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache

from lingua import IsoCode639_1, Language, LanguageDetector, LanguageDetectorBuilder

from workbench.eval.textnorm import normalize
from workbench.domain.langs import LANGUAGES

LATIN_LANGS = {"en", "es", "fr", "de", "pt", "it", "tr", "id", "vi"}
SCRIPT_OF = {"ru": "cyrillic", "ar": "arabic", "th": "thai", "ko": "hangul", "zh": "cjk",
             "ja": "cjk", **{code: "latin" for code in LATIN_LANGS}}
# CJK characters carry about a word each, so they weigh more than one Latin letter.
_WEIGHT = {"cjk": 2.0, "hangul": 2.0}
# Below this many letters nothing is judged: "OK", "14", a lone emoji.
MIN_LETTERS = 4
# Latin text shorter than this, on which lingua is unsure, is "can't tell" rather than wrong.
SHORT_LATIN = 25
# Share of weighted letters the expected script needs: brand names (Visa, PayPal, Harbor &
# Pine) legitimately put some Latin into a Chinese or Arabic answer.
MIN_SCRIPT_SHARE = 0.3
_STRIP = re.compile(
    r"\{[^{}]*\}"                                       # the JSON verdict line
    r"|https?://[\x21-\x7e]+|[\w.%+-]+@[A-Za-z0-9.-]+"    # links and e-mail addresses
    r"|(?i:harbor\s*&\s*pine)"                           # the store's name
    r"|\b[A-Z]{2,}\b"                                     # codes and acronyms (USD, DDP, UTC)
    r"|[A-Za-z]+(?:_[A-Za-z]+)+"                          # identifiers such as intent labels
    r"|[A-Za-z0-9.,:/#+-]*\d[A-Za-z0-9.,:/#+-]*",          # amounts, times, order numbers
    re.ASCII)
# Capitalised Latin words: brand and product names (Visa, PayPal, My Orders) that a Chinese
# or Arabic answer keeps in Latin letters. Dropped only when the expected script is not Latin.
_PROPER = re.compile(r"\b[A-Z][A-Za-z]*\b", re.ASCII)


@dataclass(frozen=True)
class Detection:
    """What the detector concluded about one answer."""

    # True: written in the expected language; False: not; None: too short or ambiguous.
    matches: bool | None
    # Best guess (language code) or the script, e.g. "fr" or "cyrillic"; "" when unknown.
    guess: str
    # Why, in a few words.
    detail: str


@lru_cache(maxsize=1)
def detector() -> LanguageDetector:
    """Built once: lingua's models load lazily and are shared by every thread."""
    langs = [Language.from_iso_code_639_1(getattr(IsoCode639_1, code.upper()))
             for code in LANGUAGES]
    return LanguageDetectorBuilder.from_languages(*langs).build()


def _script(ch: str) -> str | None:
    if not ch.isalpha():
        return None
    name = unicodedata.name(ch, "")
    for key, script in (("HIRAGANA", "kana"), ("KATAKANA", "kana"), ("CJK", "cjk"),
                        ("HANGUL", "hangul"), ("THAI", "thai"), ("ARABIC", "arabic"),
                        ("CYRILLIC", "cyrillic"), ("LATIN", "latin")):
        if key in name:
            return script
    return "other"


def script_counts(text: str) -> Counter:
    """Letters per script; kana is also counted as CJK so zh/ja share one script family."""
    counts: Counter = Counter(s for s in map(_script, text) if s)
    counts["cjk"] += counts["kana"]
    return counts


def _clean(text: str, keep_proper: bool = True) -> str:
    text = _STRIP.sub(" ", unicodedata.normalize("NFKC", text))
    return text if keep_proper else _PROPER.sub(" ", text)


def detect(text: str, expected: str) -> Detection:
    """Is ``text`` written in language ``expected``?"""
    want = SCRIPT_OF.get(expected, "latin")
    counts = script_counts(_clean(text, keep_proper=want == "latin"))
    letters = sum(v for k, v in counts.items() if k != "kana")
    if letters < MIN_LETTERS:
        return Detection(None, "", f"too short to tell ({letters} letters)")
    weighted = {k: v * _WEIGHT.get(k, 1.0) for k, v in counts.items() if k != "kana"}
    main = max(weighted, key=weighted.get)
    share = weighted.get(want, 0.0) / sum(weighted.values())
    needed = 0.5 if want == "latin" else MIN_SCRIPT_SHARE
    if share < needed:
        return Detection(False, main, f"written mostly in {main} script, expected {want}")
    if want == "cjk":
        return _chinese_or_japanese(counts, expected)
    if want == "latin":
        return _latin(_clean(text), expected)
    return Detection(True, expected, f"{want} script")


def _chinese_or_japanese(counts: Counter, expected: str) -> Detection:
    # Japanese prose practically always has kana; Chinese never does.
    kana, han = counts["kana"], counts["cjk"] - counts["kana"]
    kana_share = kana / max(kana + han, 1)
    if expected == "zh":
        if kana_share > 0.1:
            return Detection(False, "ja", f"contains Japanese kana ({kana} characters)")
        return Detection(True, "zh", "Han characters, no kana")
    if kana > 0 and kana_share >= 0.05:
        return Detection(True, "ja", "contains kana")
    if han < 6:
        return Detection(None, "zh", "only a few Han characters: Chinese or Japanese")
    return Detection(False, "zh", "Han characters without kana: Chinese")


def _latin(text: str, expected: str) -> Detection:
    latin = "".join(ch if _script(ch) in ("latin", None) else " " for ch in text)
    values = detector().compute_language_confidence_values(latin)
    if not values:
        return Detection(None, "", "no language detected")
    top = values[0]
    guess = top.language.iso_code_639_1.name.lower()
    if guess == expected:
        return Detection(True, guess, f"detected {guess} ({top.value:.2f})")
    letters = sum(ch.isalpha() for ch in normalize(latin))
    if letters < SHORT_LATIN and top.value < 0.6:
        return Detection(None, guess, f"short and ambiguous (best guess {guess}, {top.value:.2f})")
    return Detection(False, guess, f"detected {guess} ({top.value:.2f}), expected {expected}")
