"""Previews of stored receipts: email bodies to PNG in Chromium, PDF first pages to thumbnails with PDFium.

Email HTML and PDF attachments come from strangers. Each render runs in a process of its own with a hard
deadline (the process is killed when it is missed), Chromium fetches nothing (JavaScript off, offline, every
request aborted, a CSP of ``default-src 'none'``), PDFium runs under an address-space cap. Errors: see
:mod:`appliance.previews.errors`.
"""

from appliance.previews.document import InlinePart
from appliance.previews.errors import (
    DocumentError,
    PreviewError,
    RenderCrashedError,
    RendererUnavailableError,
    RenderTimeoutError,
)
from appliance.previews.pool import Previews, open_previews, shared

__all__ = ["DocumentError", "InlinePart", "PreviewError", "Previews", "RenderCrashedError", "RenderTimeoutError",
           "RendererUnavailableError", "open_previews", "shared"]
