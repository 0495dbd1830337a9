"""Amounts and currencies in receipt text: the total paid (not a subtotal, tax or line item) as a Decimal,
and its currency as an ISO 4217 code. English and Hebrew."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

import pycountry
from price_parser import Price

CENTS = Decimal("0.01")
_GERSHAYIM = "[\"״'׳]{1,2}"  # סה"כ, סה״כ, סה''כ and ש"ח are typed all of these ways

# (pattern, rank): the higher rank wins; among equals the last line wins (totals come last).
TOTAL_PATTERNS: list[tuple[re.Pattern[str], int]] = [
    (re.compile(r"\b(amount paid|total paid|paid total|total charged|amount charged|grand total|order total|"
                r"total amount|total due|balance due|payment amount|amount due|invoice total)\b", re.I), 3),
    (re.compile(f"סה{_GERSHAYIM}כ\\s*(ל?תשלום|שולם)|סכום ששולם|סכום לתשלום|סך הכל לתשלום|לתשלום|שולם"), 3),
    (re.compile(r"(?<![-\w])total\b", re.I), 2),
    (re.compile(f"סה{_GERSHAYIM}כ|סך הכל|סך הכול"), 2),
]
NOT_TOTAL = re.compile(r"sub-?\s?total|total (tax|vat|savings|before|excl)|tax total|you saved|"
                       r"ביניים|לפני מע", re.I)
RECEIPT_WORDS = re.compile(
    r"\b(receipts?|invoices?|order confirm(ation|ed)|payment confirm(ation|ed)|payment received|"
    r"confirmation of (your )?(order|payment))\b|קבלה|חשבונית|אישור תשלום|אישור הזמנה|אישור על תשלום",
    re.I)

SYMBOLS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(f"₪|\\bNIS\\b|ש{_GERSHAYIM}ח|\\bשקל|\\bשקלים"), "ILS"),
    (re.compile(r"€"), "EUR"),
    (re.compile(r"£"), "GBP"),
    (re.compile(r"\bUS\$"), "USD"),
    (re.compile(r"\bC(A)?\$"), "CAD"),
    (re.compile(r"\bA(U)?\$"), "AUD"),
    (re.compile(r"\bNZ\$"), "NZD"),
    (re.compile(r"¥"), "JPY"),
    (re.compile(r"₹"), "INR"),
]
DOLLAR_CODES = ("USD", "CAD", "AUD", "NZD", "SGD", "HKD")
CODE_NEAR_NUMBER = re.compile(r"\b([A-Z]{3})\s?[\d.,]*\d|\d\s?([A-Z]{3})\b")


@dataclass(frozen=True)
class Total:
    amount: Decimal
    currency: str | None


def looks_like_receipt(text: str) -> bool:
    return bool(RECEIPT_WORDS.search(text))


def iso_currency(code: str | None) -> str | None:
    if not code:
        return None
    code = code.strip().upper()
    return code if len(code) == 3 and pycountry.currencies.get(alpha_3=code) is not None else None


def parse_amount(text: str | None) -> Decimal | None:
    if text is None:
        return None
    price = Price.fromstring(str(text))
    if price.amount is None:
        return None
    try:
        return price.amount.quantize(CENTS, rounding=ROUND_HALF_UP)
    except InvalidOperation:
        return None


def currency_in(line: str, whole: str) -> str | None:
    """ISO code of the currency ``line`` states (codes beside a number first, then symbols); ``$`` is USD
    unless ``whole`` names another dollar."""
    for match in CODE_NEAR_NUMBER.finditer(line):
        code = iso_currency(match.group(1) or match.group(2))
        if code:
            return code
    for pattern, code in SYMBOLS:
        if pattern.search(line):
            return code
    if "$" in line:
        for code in DOLLAR_CODES:
            if re.search(rf"\b{code}\b", whole):
                return code
        return "USD"
    return None


def find_total(text: str) -> Total | None:
    """The total paid in ``text``: the best-ranked total line, its amount (or the next line's, for tables)."""
    lines = [line.strip() for line in text.splitlines()]
    best: tuple[int, int, Total] | None = None
    for index, line in enumerate(lines):
        if not line or NOT_TOTAL.search(line) and not _strong(line):
            continue
        for pattern, rank in TOTAL_PATTERNS:
            match = pattern.search(line)
            if not match:
                continue
            tail = line[match.end():]
            amount = parse_amount(tail) if re.search(r"\d", tail) else None
            where = line
            if amount is None:
                following = next((nxt for nxt in lines[index + 1:index + 3] if nxt), "")
                amount = parse_amount(following) if re.search(r"\d", following) else None
                where = line + " " + following
            if amount is not None and amount > 0:
                candidate = (rank, index, Total(amount, currency_in(where, text)))
                if best is None or (rank, index) >= best[:2]:
                    best = candidate
            break
    if best is None:
        return None
    total = best[2]
    return total if total.currency else Total(total.amount, currency_in(text, text))


def _strong(line: str) -> bool:
    """A line that names the total paid outright, even if it also mentions a subtotal or tax."""
    return any(rank == 3 and pattern.search(line) for pattern, rank in TOTAL_PATTERNS)
