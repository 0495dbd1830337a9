"""A generated Gmail mailbox whose receipts are known: English and Hebrew, JSON-LD and microdata markup,
plain and HTML bodies, PDF invoices, and the look-alikes that are not receipts (newsletters, shipping
notices, marketing with prices, invoices with no amount). Messages are Gmail API ``format=full`` JSON."""

from __future__ import annotations

import base64
import datetime as dt
import json
import random
from dataclasses import dataclass, field
from decimal import Decimal
from email.utils import format_datetime
from typing import Any

from fpdf import FPDF

VENDORS_EN = [
    "Acme Supplies",
    "Northwind Traders",
    "Globex",
    "Initech Cloud",
    "Umbrella Office",
    "Stark Parts",
]
VENDORS_HE = ["סופר פארם", "שופרסל", "בזק", "חברת החשמל", "פז דלק", "רמי לוי"]
DOMAINS = {name: name.lower().replace(" ", "") + ".example" for name in VENDORS_EN}
HE_DOMAINS = [
    "superpharm.co.il",
    "shufersal.co.il",
    "bezeq.co.il",
    "iec.co.il",
    "paz.co.il",
    "rami-levy.co.il",
]


@dataclass(frozen=True)
class Truth:
    is_receipt: bool
    kind: str
    vendor: str | None = None
    amount: Decimal | None = None
    currency: str | None = None


@dataclass
class Mail:
    id: str
    internal_ms: int
    history_id: int
    payload: dict[str, Any]
    truth: Truth
    attachments: dict[str, bytes] = field(default_factory=dict)
    thread_id: str = ""

    def gmail_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "threadId": self.thread_id or self.id,
            "labelIds": ["INBOX"],
            "snippet": self.truth.kind,
            "historyId": str(self.history_id),
            "internalDate": str(self.internal_ms),
            "payload": self.payload,
            "sizeEstimate": 5000,
        }


def b64(data: bytes | str) -> str:
    raw = data.encode() if isinstance(data, str) else data
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def fmt(amount: Decimal, currency: str, rng: random.Random) -> str:
    text = f"{amount:,.2f}"
    if currency == "USD":
        return rng.choice([f"${text}", f"USD {text}", f"${text} USD"])
    if currency == "EUR":
        return rng.choice([f"€{text}", f"{amount:.2f} €".replace(".", ","), f"EUR {text}"])
    if currency == "GBP":
        return f"£{text}"
    return rng.choice([f"₪{text}", f"{text} ₪", f'{text} ש"ח', f"{text} ש״ח", f"NIS {text}"])


def money(rng: random.Random, low: int = 5, high: int = 3000) -> Decimal:
    return Decimal(rng.randint(low * 100, high * 100)) / 100


def pdf_document(lines: list[str]) -> bytes:
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("helvetica", size=12)
    for line in lines:
        pdf.cell(0, 8, line, new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


class Builder:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def headers(
        self, subject: str, sender: str, when: dt.datetime, content_type: str
    ) -> list[dict[str, str]]:
        return [
            {"name": "From", "value": sender},
            {"name": "To", "value": "owner@business.example"},
            {"name": "Subject", "value": subject},
            {"name": "Date", "value": format_datetime(when)},
            {"name": "Content-Type", "value": content_type},
        ]

    def message(
        self,
        subject: str,
        sender: str,
        when: dt.datetime,
        html: str | None = None,
        text: str | None = None,
        pdf: tuple[str, str] | None = None,
    ) -> dict[str, Any]:
        parts = []
        if text is not None:
            parts.append(
                {
                    "partId": "0.0",
                    "mimeType": "text/plain",
                    "filename": "",
                    "headers": [{"name": "Content-Type", "value": "text/plain; charset=UTF-8"}],
                    "body": {"size": len(text.encode()), "data": b64(text)},
                }
            )
        if html is not None:
            parts.append(
                {
                    "partId": "0.1",
                    "mimeType": "text/html",
                    "filename": "",
                    "headers": [{"name": "Content-Type", "value": "text/html; charset=UTF-8"}],
                    "body": {"size": len(html.encode()), "data": b64(html)},
                }
            )
        body = {
            "partId": "0",
            "mimeType": "multipart/alternative",
            "filename": "",
            "headers": [],
            "body": {"size": 0},
            "parts": parts,
        }
        if pdf is None:
            return {
                "partId": "",
                "mimeType": "multipart/alternative",
                "filename": "",
                "headers": self.headers(subject, sender, when, "multipart/alternative"),
                "body": {"size": 0},
                "parts": parts,
            }
        filename, attachment_id = pdf
        return {
            "partId": "",
            "mimeType": "multipart/mixed",
            "filename": "",
            "headers": self.headers(subject, sender, when, "multipart/mixed"),
            "body": {"size": 0},
            "parts": [
                body,
                {
                    "partId": "1",
                    "mimeType": "application/pdf",
                    "filename": filename,
                    "headers": [{"name": "Content-Type", "value": "application/pdf"}],
                    "body": {"size": 0, "attachmentId": attachment_id},
                },
            ],
        }


def _receipt_table(rows: list[tuple[str, str]]) -> str:
    cells = "".join(f"<tr><td>{a}</td><td>{b}</td></tr>" for a, b in rows)
    return f"<table>{cells}</table>"


def make_mail(index: int, when: dt.datetime, rng: random.Random, kind: str | None = None) -> Mail:
    b = Builder(rng)
    kind = (
        kind
        or rng.choices(
            [
                "jsonld",
                "microdata",
                "html_en",
                "html_he",
                "plain_en",
                "pdf",
                "pdf_quiet",
                "newsletter",
                "shipping",
                "marketing_en",
                "marketing_he",
                "personal",
                "invoice_no_amount",
            ],
            weights=[6, 4, 8, 8, 4, 5, 2, 14, 10, 10, 8, 6, 3],
        )[0]
    )
    msg_id = f"{index:016x}"
    vendor = rng.choice(VENDORS_EN)
    sender = f"{vendor} <billing@{DOMAINS[vendor]}>"
    currency = rng.choice(["USD", "EUR", "GBP", "ILS"])
    total = money(rng)
    sub = (total / Decimal("1.17")).quantize(Decimal("0.01"))
    tax = total - sub
    attachments: dict[str, bytes] = {}
    pdf = None
    truth = Truth(True, kind, vendor, total, currency)
    order = rng.randint(10000, 99999)
    if kind == "jsonld":
        markup = {
            "@context": "http://schema.org",
            "@type": "Order",
            "merchant": {"@type": "Organization", "name": vendor},
            "orderNumber": str(order),
            "price": f"{total:.2f}",
            "priceCurrency": currency,
            "acceptedOffer": {
                "@type": "Offer",
                "itemOffered": {"@type": "Product", "name": "Widget"},
                "price": f"{sub:.2f}",
                "priceCurrency": currency,
            },
        }
        html = (
            f'<html><head><script type="application/ld+json">{json.dumps(markup)}</script></head><body>'
            f"<p>Thanks for shopping with us.</p>"
            + _receipt_table(
                [
                    ("Widget", fmt(sub, currency, rng)),
                    ("Tax", fmt(tax, currency, rng)),
                    ("Total", fmt(total, currency, rng)),
                ]
            )
            + "</body></html>"
        )
        payload = b.message(
            f"Your {vendor} order #{order}", f"Orders <orders@{DOMAINS[vendor]}>", when, html=html
        )
    elif kind == "microdata":
        html = (
            '<html><body><div itemscope itemtype="http://schema.org/Invoice">'
            '<div itemprop="provider" itemscope itemtype="http://schema.org/Organization">'
            f'<span itemprop="name">{vendor}</span></div>'
            '<div itemprop="totalPaymentDue" itemscope itemtype="http://schema.org/PriceSpecification">'
            f'<meta itemprop="price" content="{total:.2f}">'
            f'<meta itemprop="priceCurrency" content="{currency}">'
            f"</div><p>Statement for account {order}</p></div></body></html>"
        )
        payload = b.message(f"Statement {order}", f"Accounts <noreply@{DOMAINS[vendor]}>", when, html=html)
    elif kind == "html_en":
        label = rng.choice(["Total", "Amount paid", "Grand total", "Total paid"])
        html = (
            f"<html><body><h1>Receipt from {vendor}</h1><p>Order #{order}</p>"
            + _receipt_table(
                [
                    ("Widget x2", fmt(sub / 2, currency, rng)),
                    ("Subtotal", fmt(sub, currency, rng)),
                    ("Tax", fmt(tax, currency, rng)),
                    (label, fmt(total, currency, rng)),
                ]
            )
            + "<p>Questions? Reply to this email.</p></body></html>"
        )
        subject = rng.choice(
            [
                f"Your receipt from {vendor}",
                f"Order confirmation #{order}",
                f"Payment confirmation - {vendor}",
            ]
        )
        payload = b.message(subject, sender, when, html=html, text=f"Receipt from {vendor}")
    elif kind == "html_he":
        vendor = rng.choice(VENDORS_HE)
        currency = "ILS"
        domain = HE_DOMAINS[VENDORS_HE.index(vendor)]
        label = rng.choice(['סה"כ לתשלום', "סה״כ לתשלום", "סה״כ", "סכום ששולם"])
        html = (
            f'<html dir="rtl"><body><h2>{rng.choice(["קבלה", "חשבונית מס קבלה", "אישור תשלום"])} מס׳ {order}'
            f"</h2><p>תודה שקניתם ב{vendor}</p>"
            + _receipt_table(
                [
                    ("סכום ביניים", fmt(sub, currency, rng)),
                    ('מע"מ 17%', fmt(tax, currency, rng)),
                    (label, fmt(total, currency, rng)),
                ]
            )
            + "</body></html>"
        )
        subject = rng.choice([f"קבלה מ{vendor}", f"חשבונית מס מספר {order}", f"אישור הזמנה {order}"])
        payload = b.message(subject, f"{vendor} <noreply@{domain}>", when, html=html)
        truth = Truth(True, kind, vendor, total, currency)
    elif kind == "plain_en":
        text = (
            f"Hello,\n\nThis is your payment confirmation for invoice {order}.\n\n"
            f"Items: {fmt(sub, currency, rng)}\nVAT: {fmt(tax, currency, rng)}\n"
            f"Amount paid: {fmt(total, currency, rng)}\n\nThank you,\n{vendor}\n"
        )
        payload = b.message(f"Payment received - invoice {order}", sender, when, text=text)
    elif kind in ("pdf", "pdf_quiet"):
        currency = rng.choice(["USD", "EUR", "GBP"])  # the PDF font (Helvetica) has no shekel sign
        amount_text = {"USD": f"USD {total:,.2f}", "EUR": f"EUR {total:,.2f}", "GBP": f"GBP {total:,.2f}"}[
            currency
        ]
        document = pdf_document(
            [
                vendor,
                f"INVOICE {order}",
                f"Date: {when:%Y-%m-%d}",
                f"Consulting services   {sub:,.2f}",
                f"VAT   {tax:,.2f}",
                f"Total due: {amount_text}",
            ]
        )
        attachment_id = f"att-{msg_id}"
        attachments[attachment_id] = document
        pdf = (f"invoice-{order}.pdf", attachment_id)
        subject = f"Invoice {order} from {vendor}" if kind == "pdf" else f"Documents for {order}"
        payload = b.message(
            subject, sender, when, text="Hello,\nPlease find the attached document.\nThanks", pdf=pdf
        )
        truth = Truth(True, kind, vendor, total, currency)
    else:
        truth = Truth(False, kind)
        if kind == "newsletter":
            html = (
                "<html><body><h1>This week at the blog</h1><p>Five tips for small businesses.</p>"
                "<p><a href='#'>Unsubscribe</a></p></body></html>"
            )
            payload = b.message("Weekly digest", f"News <news@{DOMAINS[vendor]}>", when, html=html)
        elif kind == "shipping":
            html = (
                f"<html><body><p>Good news! Your order #{order} has shipped and is on its way.</p>"
                f"<p>Tracking number: 1Z{order}X</p></body></html>"
            )
            payload = b.message(f"Your order #{order} has shipped", sender, when, html=html)
        elif kind == "marketing_en":
            price, was = money(rng, 5, 200), money(rng, 201, 400)
            html = (
                f"<html><body><h1>Black Friday at {vendor}!</h1><p>Now only {fmt(price, currency, rng)}, "
                f"was {fmt(was, currency, rng)}.</p><p>Total savings up to 50%. Order now!</p></body></html>"
            )
            payload = b.message("Deals you will love", f"{vendor} <deals@{DOMAINS[vendor]}>", when, html=html)
        elif kind == "marketing_he":
            price = money(rng, 5, 200)
            html = (
                f"<html dir='rtl'><body><h1>מבצע סוף עונה!</h1><p>רק {fmt(price, 'ILS', rng)} במקום "
                f"{fmt(price * 2, 'ILS', rng)}</p></body></html>"
            )
            payload = b.message(
                "מבצעים חמים השבוע", f"{rng.choice(VENDORS_HE)} <promo@shop.co.il>", when, html=html
            )
        elif kind == "invoice_no_amount":
            html = (
                "<html><body><p>Your invoice is ready. Log in to your account to view it.</p></body></html>"
            )
            payload = b.message(f"Your invoice from {vendor} is ready", sender, when, html=html)
        else:
            payload = b.message(
                "Lunch tomorrow?",
                "Dana <dana@friends.example>",
                when,
                text="Are we still on for lunch tomorrow at 12:30?",
            )
    return Mail(msg_id, int(when.timestamp() * 1000), 0, payload, truth, attachments)


def generate(
    count: int, seed: int = 12, end: dt.datetime | None = None, days: int = 300, first_index: int = 1
) -> list[Mail]:
    """``count`` messages spread over the ``days`` before ``end`` (default now), oldest first."""
    rng = random.Random(seed)
    end = end or dt.datetime.now(dt.UTC)
    moments = sorted(end - dt.timedelta(seconds=rng.uniform(60, days * 86400)) for _ in range(count))
    return [make_mail(first_index + i, when, rng) for i, when in enumerate(moments)]
