"""Numbers written with a +country code are masked when their length is possible for that
country, even in ranges libphonenumber calls invalid (fictional, reserved, unassigned)."""
from __future__ import annotations

import phonenumbers
import pytest

from workbench.domain.pii import find_pii, mask_pii


@pytest.mark.parametrize("number, region, lang", [
    ("+1 555 0100 123", "US", "en"),
    ("+1 555-010-0199", None, None),
    ("+44 7700 900123", "GB", "en"),
    ("+33 6 39 98 00 00", "EU", "fr"),
    ("+81 90 0000 0000", "JP", "ja"),
    ("+49 150 0000000", "CN", "zh"),  # another region's number: the +49 says whose
])
def test_possible_but_invalid_international_numbers_are_masked(number: str, region: str | None,
                                                               lang: str | None) -> None:
    parsed = phonenumbers.parse(number, None)
    assert phonenumbers.is_possible_number(parsed) and not phonenumbers.is_valid_number(parsed)
    text = f"Call me on {number}, thanks."
    assert mask_pii(text, region, lang) == "Call me on [PHONE], thanks."
    (span,) = find_pii(text, region, lang)
    assert span.kind == "phone" and text[span.start:span.end] == number


def test_next_to_text_without_spaces() -> None:
    assert mask_pii("我的电话是+86 100 0000 0000，谢谢", "CN", "zh") == "我的电话是[PHONE]，谢谢"


@pytest.mark.parametrize("text", [
    "3+4 = 7 and 12+1234567 too",           # arithmetic: the + follows a digit
    "Delivery in +30 days, order 4455",       # too few digits for any country
    "Shipped on +2024-05-01 from the hub",    # a date after the sign
    "Sales were up +12.5% to 1234567 units",  # a percentage
    "Grade A+1 555 0100 student",             # the + follows a letter
    "Balance +1 234 567 8900 ₫ after refund",  # an amount with its currency
])
def test_look_alikes_with_a_plus_stay(text: str) -> None:
    assert [s for s in find_pii(text) if s.kind == "phone"] == []


def test_too_long_for_the_country_stays() -> None:
    # +1 numbers have ten digits: eleven after the country code is not a possible number.
    text = "Ref +1 555 0100 1234 5 in the ledger"
    assert phonenumbers.is_possible_number(phonenumbers.parse("+1 555 0100 12345", None)) is False
    assert "+1 555 0100 1234 5" in mask_pii(text, "US", "en")
