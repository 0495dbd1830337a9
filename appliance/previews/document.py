"""The page Chromium is given for an email: a Content-Security-Policy first, ``cid:`` images inlined.

Pure functions, no I/O. The CSP ``<meta>`` comes before anything of the email's own, so the parser puts it
in the head ahead of every element that could fetch something: with ``default-src 'none'`` nothing leaves
the page, with ``img-src data:`` the inlined parts still show, and inline styles still apply. The email's
own CSP can only narrow this further (a document obeys every policy it carries).
"""

from __future__ import annotations

import base64
import html as html_lib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import unquote

from appliance.previews.errors import DocumentError

CSP = "default-src 'none'; img-src data: cid:; style-src 'unsafe-inline'"
MAX_HTML_CHARS = 2 * 1024 * 1024  # Gmail clips a message at 102 KB; an email body of 2 MiB is abuse
HEAD = f'<meta charset="utf-8"><meta http-equiv="Content-Security-Policy" content="{CSP}">'
_CID = re.compile(r"cid:([^\s\"'<>()]+)", re.IGNORECASE)


@dataclass(frozen=True)
class InlinePart:
    """A MIME part an email refers to as ``cid:<content_id>`` (an image shown in its body)."""

    content_type: str
    data: bytes

    def data_uri(self) -> str:
        return f"data:{self.content_type};base64,{base64.b64encode(self.data).decode('ascii')}"


def content_id(value: str) -> str:
    """The form a Content-ID is matched in: no angle brackets, URL-decoded, lower case."""
    return unquote(value).strip().strip("<>").lower()


def safe_document(html: str, inline: Mapping[str, InlinePart] | None = None) -> str:
    """The email's HTML behind our CSP, with every ``cid:`` reference to a known image part inlined."""
    if len(html) > MAX_HTML_CHARS:
        raise DocumentError(f"email body of {len(html)} characters is over the {MAX_HTML_CHARS} limit")
    parts = {content_id(cid): part for cid, part in (inline or {}).items()
             if part.content_type.lower().startswith("image/")}
    if parts:
        def inline_one(match: re.Match[str]) -> str:
            part = parts.get(content_id(match.group(1)))
            return part.data_uri() if part is not None else match.group(0)

        html = _CID.sub(inline_one, html)
    return HEAD + html


def text_document(text: str) -> str:
    """A plain-text email body as HTML: escaped, wrapped, in the sans-serif an email client would use."""
    return ('<pre style="white-space: pre-wrap; font: 15px/1.45 sans-serif; margin: 24px">'
            f"{html_lib.escape(text)}</pre>")
