"""What counts as a receipt (DESIGN.md), and its vendor, amount and currency.

In order: schema.org ``Order``/``Invoice`` markup with a price (JSON-LD or microdata, through extruct);
then the message's own words (HTML turned into text by html-text), a receipt in English or Hebrew that
states a total; then the text of its PDF attachments (pypdfium2). Anything else is not a receipt.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import extruct
import html_text

from appliance.receipts.message import Message
from appliance.receipts.money import find_total, iso_currency, looks_like_receipt, parse_amount

MARKUP_TYPES = {"Order", "Invoice"}
VENDOR_KEYS = ("merchant", "seller", "provider", "broker", "vendor")
PRICE_KEYS = ("totalPaymentDue", "totalPrice", "price", "priceSpecification", "minimumPaymentDue")
SECOND_LEVEL = {"co", "com", "org", "net", "ac", "gov", "gv", "muni"}


@dataclass(frozen=True)
class Found:
    vendor: str
    amount: Decimal
    currency: str | None
    source: str  # "markup", "body" or "pdf"


def body_text(message: Message) -> str:
    if message.html:
        return html_text.extract_text(message.html, guess_layout=True)
    return message.text or ""


def from_body(message: Message) -> Found | None:
    """A receipt the message's markup or words make; None when they say nothing (PDFs may still)."""
    if message.html:
        found = from_markup(message)
        if found:
            return found
    text = body_text(message)
    if looks_like_receipt(message.subject) or looks_like_receipt(text):
        total = find_total(text)
        if total:
            return Found(vendor_of(message), total.amount, total.currency, "body")
    return None


def from_pdf(message: Message, text: str) -> Found | None:
    """A receipt in a PDF attachment's text (read by ``appliance.previews``' PDF process, never here:
    PDFium is not thread-safe, and a hostile PDF may crash it or exhaust its memory)."""
    if not text or not (looks_like_receipt(text) or looks_like_receipt(message.subject)):
        return None
    total = find_total(text)
    return Found(vendor_of(message), total.amount, total.currency, "pdf") if total else None


# -- markup ----------------------------------------------------------------------------------------------
def from_markup(message: Message) -> Found | None:
    try:
        data = extruct.extract(message.html, syntaxes=["json-ld", "microdata"], uniform=True, errors="ignore")
    except Exception:  # malformed markup is simply no markup
        return None
    for item in _items(data.get("json-ld", []) + data.get("microdata", [])):
        if not MARKUP_TYPES & set(_types(item)):
            continue
        price = _price(item)
        if price is not None:
            amount, currency = price
            vendor = next((v for v in (_name(item.get(key)) for key in VENDOR_KEYS) if v), None)
            return Found(vendor or vendor_of(message), amount, currency, "markup")
    return None


def _items(value: Any) -> Iterator[dict[str, Any]]:
    if isinstance(value, list):
        for element in value:
            yield from _items(element)
    elif isinstance(value, dict):
        yield value
        for key in ("@graph", "partOfInvoice", "referencesOrder"):
            if key in value:
                yield from _items(value[key])


def _types(item: dict[str, Any]) -> list[str]:
    raw = item.get("@type") or []
    return [str(t).rsplit("/", 1)[-1] for t in (raw if isinstance(raw, list) else [raw])]


def _name(value: Any) -> str | None:
    if isinstance(value, list):
        value = value[0] if value else None
    if isinstance(value, dict):
        value = value.get("name")
    return str(value).strip()[:200] if value else None


def _price(item: dict[str, Any]) -> tuple[Decimal, str | None] | None:
    for key in PRICE_KEYS:
        value = item.get(key)
        if isinstance(value, list):
            value = value[0] if value else None
        currency = iso_currency(item.get("priceCurrency"))
        if isinstance(value, dict):
            currency = iso_currency(value.get("priceCurrency") or value.get("currency")) or currency
            value = value.get("price", value.get("value"))
        amount = parse_amount(value)
        if amount is not None and amount > 0:
            return amount, currency
    return None


# -- vendor ----------------------------------------------------------------------------------------------
def vendor_of(message: Message) -> str:
    """The From display name, else the sender's domain (``billing.acme.co.il`` → ``acme.co.il``)."""
    if message.sender_name:
        return message.sender_name[:200]
    labels = [label for label in message.sender_domain.split(".") if label]
    if len(labels) >= 3 and labels[-2] in SECOND_LEVEL and len(labels[-1]) == 2:
        return ".".join(labels[-3:])
    return ".".join(labels[-2:]) or message.sender or "unknown"
