"""Mask personal data before anything is logged, stored or trained on.

Order numbers, emails, phone numbers and payment card numbers are replaced by tags. Card
numbers are masked only when they pass the Luhn check, so that order numbers and prices
are not mistaken for cards; order numbers are recognised by their shape (#123456,
"ORD-..." or a long digit run after an order word in any of the 15 languages).
"""
from __future__ import annotations

import re

EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
# 13-19 digits, optionally grouped by spaces or dashes.
CARD = re.compile(r"(?<!\d)(?:\d[ -]?){12,18}\d(?!\d)")
# Order ids: #12345, ORD-12345 / PO123456, or 6+ digits/letters after an order word.
ORDER_WORDS = (
    r"order|commande|pedido|bestellung|ordine|заказ|sipariş|siparis|pesanan|đơn hàng|"
    r"คำสั่งซื้อ|طلب|订单|訂單|注文|주문|encomenda|auftrag"
)
ORDER_LABELS = r"no\.?|nr\.?|n[º°]\.?|number|n[uú]m[eé]ro|nummer|номер|号|番号|번호|رقم|số|หมายเลข"
ORDER = re.compile(
    rf"(?:#\s?\d{{5,}}|\b(?:ORD|ORDER|PO|SO)[-_ ]?\d{{4,}}\b|"
    rf"(?:{ORDER_WORDS})\s*(?:{ORDER_LABELS})?\s*[:#]?\s*((?=[A-Z-]*\d)[A-Z0-9][A-Z0-9-]{{5,}}))",
    re.IGNORECASE,
)
# International or local phone numbers: +cc and 7+ digits with separators.
PHONE = re.compile(r"(?<![\w])\+?\d{1,3}?[ .-]?\(?\d{2,4}\)?(?:[ .-]?\d{2,4}){2,4}(?![\w])")

TAGS = {"email": "[EMAIL]", "card": "[CARD]", "order": "[ORDER_ID]", "phone": "[PHONE]"}


def luhn_ok(digits: str) -> bool:
    total, parity = 0, len(digits) % 2
    for i, ch in enumerate(digits):
        d = int(ch)
        if i % 2 == parity:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _mask_card(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group(0))
    return TAGS["card"] if 13 <= len(digits) <= 19 and luhn_ok(digits) else match.group(0)


def _mask_order(match: re.Match[str]) -> str:
    if match.group(1):  # keep the order word, mask the id only
        start, end = match.span(1)
        whole = match.group(0)
        offset = match.start(0)
        return whole[: start - offset] + TAGS["order"] + whole[end - offset:]
    return TAGS["order"]


def _mask_phone(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group(0))
    # Short runs are quantities, dates or prices; a leading + marks an international number.
    least = 8 if match.group(0).startswith("+") else 9
    return TAGS["phone"] if least <= len(digits) <= 15 else match.group(0)


def mask_pii(text: str) -> str:
    """Return ``text`` with emails, card numbers, order ids and phone numbers masked."""
    if not text:
        return text
    text = EMAIL.sub(TAGS["email"], text)
    text = CARD.sub(_mask_card, text)
    text = ORDER.sub(_mask_order, text)
    text = PHONE.sub(_mask_phone, text)
    return text
