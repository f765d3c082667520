"""Find and mask personal data before anything is logged, stored or trained on.

Each kind has the library made for it: phone numbers are found by libphonenumber
(``phonenumbers``) for the countries of the customer's store region and language, and any
number written with a ``+`` and a country code whose length is *possible* for that country
(the library calls fictional and reserved ranges such as +1 555 01xx invalid, yet they are
still somebody's number as far as a log is concerned). IBANs, national ids and card numbers
are masked only when ``python-stdnum`` accepts their checksum (Luhn and an issuer prefix for
cards), so dates, prices, quantities and tracking numbers stay as written. Emails and the
store's order numbers have fixed shapes.
``workbench/data/pii.yaml`` holds the per-region rules.
"""
from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache

import phonenumbers
import yaml
from stdnum import iban, luhn
from workbench.config import DATA_ROOT

RULES_FILE = DATA_ROOT / "pii.yaml"
TAGS = {"email": "[EMAIL]", "iban": "[IBAN]", "card": "[CARD]", "national_id": "[NATIONAL_ID]",
        "order": "[ORDER_ID]", "phone": "[PHONE]"}
# When two findings overlap, the earlier kind wins (an IBAN holds digit runs a phone
# matcher would also take, an order id may look like a national id).
PRIORITY = tuple(TAGS)

# No letter or digit may touch a finding; \b would not do, since CJK text has no spaces
# and "电话13812345678" must still match.
_LEFT, _RIGHT = r"(?<![A-Za-z0-9])", r"(?![A-Za-z0-9])"
EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
IBAN = re.compile(_LEFT + r"[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}")
CARD = re.compile(_LEFT + r"\d(?:[ -]?\d){12,18}" + _RIGHT)
# A phone number has at least six digits; text without such a run skips the matcher.
DIGIT_RUN = re.compile(r"\d(?:[\s().\-/]*\d){5,}")
# libphonenumber accepts some dates as numbers ("2023-08-29 15" is a valid CN number). The
# whole match must be the date (and an hour), so "06.12.34.56.78" stays a phone number.
DATE_LIKE = re.compile(
    r"^\s*(?:(?:[12]\d{3}[-/.年]\s?[01]?\d[-/.月]\s?[0-3]?\d"    # 2023-08-29, 2023年8月29
    r"|[0-3]?\d[-/.][01]?\d[-/.](?:[12]\d)?\d{2}"                # 29.08.2023, 29/08/23
    r"|[01]?\d[-/.][0-3]?\d[-/.][12]\d{3})"                       # 08/29/2023
    r"(?:\s+[0-2]?\d(?:[:h.][0-5]\d)?)?"                          # an hour after it
    r"|[0-2]?\d[:h.][0-5]\d\s?[-–~]\s?[0-2]?\d[:h.][0-5]\d)\s*$")  # 08:00-20:00
# An international number ("+44 ...") only counts after a space, punctuation or a letter of a
# script without spaces (CJK, Thai): not after a Latin letter, a digit or a sign ("3+4").
INTL_LEFT = re.compile(r"[^A-Za-z0-9+\-*/=^]")
# Digits after the country code: below this, "+30 days" and "+12345" are not phone numbers.
MIN_INTL_DIGITS = 6
# Amounts: thousands groups ("1.990.000"), or a currency sign or code right before or after.
AMOUNT = re.compile(r"^\d{1,3}(?:\.\d{3})+(?:,\d{1,2})?$|^\d{1,3}(?:,\d{3})+(?:\.\d{1,2})?$")
CURRENCY = (r"[$€£¥₩₫฿₽₹₺]|R\$|Rp|TL|EUR|USD|GBP|JPY|CNY|RMB|KRW|VND|THB|RUB|INR|IDR|BRL|MXN|"
            r"SAR|AED|AUD|TRY|ريال|درهم|руб|đ|元|円|원|บาท")
CURRENCY_BEFORE = re.compile(rf"(?:{CURRENCY})\s?$")
CURRENCY_AFTER = re.compile(rf"^\s?(?:{CURRENCY})")


@dataclass(frozen=True)
class PiiSpan:
    """One piece of personal data found in a text."""

    # One of TAGS' keys.
    kind: str
    # Character offsets into the text: text[start:end] is the finding.
    start: int
    end: int
    # The finding as written.
    text: str


@dataclass(frozen=True)
class IdRule:
    """One national id: how customers write it and what checks it."""

    # Country it belongs to.
    country: str
    # Candidate shape, with boundaries.
    pattern: re.Pattern[str]
    # Checksum/format check on the candidate; None for ids with no checksum.
    check: Callable[[str], bool] | None


@dataclass(frozen=True)
class Rules:
    """pii.yaml, compiled."""

    region_countries: dict[str, tuple[str, ...]]
    language_countries: dict[str, tuple[str, ...]]
    national_ids: dict[str, tuple[IdRule, ...]]
    card_prefixes: tuple[str, ...]
    orders: tuple[re.Pattern[str], ...]

    def countries(self, region: str | None, lang: str | None) -> tuple[str, ...]:
        """Countries to look for local numbers of: the region's and the language's, or those
        of every store region and language when neither is known."""
        picked = [*self.region_countries.get(region or "", ()), *self.language_countries.get(lang or "", ())]
        if not picked:
            picked = [c for table in (self.region_countries, self.language_countries)
                      for cs in table.values() for c in cs]
        return tuple(dict.fromkeys(picked))


def _checker(module: str | None) -> Callable[[str], bool] | None:
    if module is None:
        return None
    if module == "luhn":
        return lambda s: luhn.is_valid(re.sub(r"\D", "", s))
    return importlib.import_module(f"stdnum.{module}").is_valid


@lru_cache(maxsize=1)
def rules() -> Rules:
    raw = yaml.safe_load(RULES_FILE.read_text(encoding="utf-8"))
    ids = {country: tuple(IdRule(country, re.compile(_LEFT + f"(?:{r['pattern']})" + _RIGHT),
                                 _checker(r.get("module"))) for r in entries)
           for country, entries in raw["national_ids"].items()}
    words = "|".join(sorted(map(re.escape, raw["order_words"]), key=len, reverse=True))
    labels = "|".join(raw["order_labels"])
    # The id after an order word needs a digit, so "order status" or "заказ вчера" stay.
    after_word = re.compile(rf"(?:{words})\s*(?:(?:{labels})\s*)?[:#]?\s*"
                            rf"(?P<id>(?=[A-Z-]*\d)[A-Z0-9][A-Z0-9-]{{5,}}){_RIGHT}", re.IGNORECASE)
    shapes = tuple(re.compile(_LEFT + p + _RIGHT, re.IGNORECASE) for p in raw["order_patterns"])
    return Rules(
        region_countries={k: tuple(v) for k, v in raw["region_countries"].items()},
        language_countries={k: tuple(v) for k, v in raw["language_countries"].items()},
        national_ids=ids, card_prefixes=tuple(raw["card_prefixes"]), orders=(*shapes, after_word))


# ---- detectors: each yields spans, overlaps are settled afterwards ----------------------
def _emails(text: str) -> Iterable[PiiSpan]:
    for m in EMAIL.finditer(text):
        yield PiiSpan("email", m.start(), m.end(), m.group(0))


def _ibans(text: str) -> Iterable[PiiSpan]:
    for m in IBAN.finditer(text):
        # The pattern may run into a following word or number; keep the longest prefix
        # ending at a group boundary whose mod-97 checksum holds.
        whole = m.group(0)
        ends = [len(whole), *(i for i in range(len(whole) - 1, 14, -1) if whole[i] == " ")]
        end = next((e for e in ends if iban.is_valid(whole[:e])), None)
        if end is not None:
            yield PiiSpan("iban", m.start(), m.start() + end, whole[:end])


def luhn_ok(digits: str) -> bool:
    """The Luhn (mod 10) check, as payment cards carry it."""
    return luhn.is_valid(digits)


def _cards(text: str) -> Iterable[PiiSpan]:
    prefixes = rules().card_prefixes
    for m in CARD.finditer(text):
        digits = re.sub(r"\D", "", m.group(0))
        if 13 <= len(digits) <= 19 and digits.startswith(prefixes) and luhn_ok(digits):
            yield PiiSpan("card", m.start(), m.end(), m.group(0))


def _national_ids(text: str, countries: tuple[str, ...]) -> Iterable[PiiSpan]:
    for country in countries:
        for rule in rules().national_ids.get(country, ()):
            for m in rule.pattern.finditer(text):
                if rule.check is None or _safe(rule.check, m.group(0)):
                    yield PiiSpan("national_id", m.start(), m.end(), m.group(0))


def _safe(check: Callable[[str], bool], value: str) -> bool:
    try:
        return bool(check(value))
    except Exception:  # noqa: BLE001 - a validator bug must not stop masking
        return False


def _orders(text: str) -> Iterable[PiiSpan]:
    for pattern in rules().orders:
        for m in pattern.finditer(text):
            start, end = m.span("id") if "id" in pattern.groupindex else m.span()
            yield PiiSpan("order", start, end, text[start:end])


def _phones(text: str, countries: tuple[str, ...]) -> Iterable[PiiSpan]:
    if not DIGIT_RUN.search(text):
        return
    # "ZZ" (unknown region) still finds every number written with a +country code.
    for country in (*countries, "ZZ"):
        for m in phonenumbers.PhoneNumberMatcher(text, country, leniency=phonenumbers.Leniency.VALID):
            if not _looks_like_date_or_amount(text, m.start, m.end):
                yield PiiSpan("phone", m.start, m.end, m.raw_string)
    yield from _international_phones(text)


def _international_phones(text: str) -> Iterable[PiiSpan]:
    """Numbers written as "+<country code> ...": a possible length for that country is enough.

    With "ZZ" the matcher parses only numbers that carry their country code, so a national
    digit run (an order number, a tracking id) never gets here; the "+" must start the
    finding and must not follow a letter, digit or another sign ("3+4", "A+1 234 ...").
    """
    if "+" not in text:
        return
    for m in phonenumbers.PhoneNumberMatcher(text, "ZZ", leniency=phonenumbers.Leniency.POSSIBLE):
        raw = m.raw_string.lstrip("(")
        start = m.end - len(raw)
        if (raw.startswith("+") and INTL_LEFT.match(text[:start][-1:] or " ")
                and len(phonenumbers.national_significant_number(m.number)) >= MIN_INTL_DIGITS
                and not _looks_like_date_or_amount(text, start + 1, m.end)):
            yield PiiSpan("phone", start, m.end, text[start:m.end])


def _looks_like_date_or_amount(text: str, start: int, end: int) -> bool:
    raw = text[start:end]
    return bool(DATE_LIKE.match(raw) or AMOUNT.match(raw) or CURRENCY_BEFORE.search(text[:start])
                or CURRENCY_AFTER.match(text[end:]))


def find_pii(text: str, region: str | None = None, lang: str | None = None) -> list[PiiSpan]:
    """Personal data in ``text``, in order, without overlaps.

    ``region`` (a store region such as ``EU``) and ``lang`` (the customer's language) say
    whose local phone numbers and national ids to look for; with neither, all store regions.
    """
    if not text:
        return []
    countries = rules().countries(region, lang)
    found = [*_emails(text), *_ibans(text), *_cards(text), *_national_ids(text, countries),
             *_orders(text), *_phones(text, countries)]
    found.sort(key=lambda s: (PRIORITY.index(s.kind), -(s.end - s.start), s.start))
    kept: list[PiiSpan] = []
    for span in found:
        if all(span.end <= k.start or span.start >= k.end for k in kept):
            kept.append(span)
    return sorted(kept, key=lambda s: s.start)


def mask_pii(text: str, region: str | None = None, lang: str | None = None) -> str:
    """``text`` with emails, IBANs, card numbers, national ids, order ids and phone numbers
    replaced by tags such as ``[IBAN]``; everything else is kept as written."""
    spans = find_pii(text, region, lang)
    for span in reversed(spans):
        text = text[:span.start] + TAGS[span.kind] + text[span.end:]
    return text
