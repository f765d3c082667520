"""Text normalisation shared by the scorers: digits of every script, case, dashes, apostrophes.

A fact like ``14.90`` must match ``١٤٫٩٠`` (Arabic-Indic), ``۱۴٫۹۰`` (Persian), ``１４.９０``
(full-width), ``๑๔.๙๐`` (Thai) or ``१४.९०`` (Devanagari), and ``7-12`` must match ``7–12``.
"""
from __future__ import annotations

import re
import unicodedata

# Separators Unicode does not fold with NFKC: Arabic decimal/thousands marks, dashes, quotes.
_TRANSLATE = str.maketrans({
    "\u066b": ".",  # ARABIC DECIMAL SEPARATOR
    "\u066c": ",",  # ARABIC THOUSANDS SEPARATOR
    "\u060c": ",",  # ARABIC COMMA
    "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2014": "-", "\u2212": "-",
    "\u301c": "-", "\uff5e": "-", "~": "-",  # wave dashes used for ranges in CJK text
    "\u2018": "'", "\u2019": "'", "\u02bc": "'", "\u00b4": "'",
    "\u201c": '"', "\u201d": '"', "\u00ab": '"', "\u00bb": '"',
    "\u00a0": " ", "\u202f": " ", "\u3000": " ",
    "\u0307": None,  # combining dot left by casefolding Turkish "İ"
})
_DECIMAL_MARK = re.compile(r"(?<=\d)[.,](?=\d)")
_RANGE = re.compile(r"(?<=\d)\s*-\s*(?=\d)")
_SPACES = re.compile(r"\s+")


def ascii_digits(text: str) -> str:
    """Every Unicode decimal digit (any script) as its ASCII digit; other characters kept."""
    return "".join(str(unicodedata.decimal(ch)) if ch.isdecimal() else ch for ch in text)


def normalize(text: str) -> str:
    """NFKC, casefold, ASCII digits and separators, one space between words.

    Decimal marks between digits become ``.`` so ``14,90`` (French) matches ``14.90``; both
    sides of a comparison go through this function, so the folding is symmetric.
    """
    text = unicodedata.normalize("NFKC", text).casefold().translate(_TRANSLATE)
    text = ascii_digits(text)
    text = _DECIMAL_MARK.sub(".", text)
    text = _RANGE.sub("-", text)
    return _SPACES.sub(" ", text).strip()
