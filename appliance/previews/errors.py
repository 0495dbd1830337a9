"""Errors of the previews package (no Trio here: render processes import this module too).

    PreviewError                    a preview could not be made; the message says why
     ├─ DocumentError               the input itself is refused (too large, not a PDF, encrypted, ...)
     ├─ RenderTimeoutError          the render did not finish within its deadline (the process was killed)
     ├─ RenderCrashedError          the process rendering it died (a crash, or out of memory on a bomb)
     └─ RendererUnavailableError    Chromium cannot start here (CHROMIUM_PATH missing or broken): retry later

The first three are about one input and are final for it; the last is about the machine.
"""

from __future__ import annotations


class PreviewError(Exception):
    """A preview could not be made."""


class DocumentError(PreviewError):
    """The input is refused: too large, not a PDF, encrypted, an impossible page."""


class RenderTimeoutError(PreviewError):
    """The render missed its deadline; its process was killed and is replaced on the next call."""


class RenderCrashedError(PreviewError):
    """The process rendering this input died: PDFium or Chromium crashed, or ran out of memory."""


class RendererUnavailableError(PreviewError):
    """The renderer cannot start: the browser is missing or will not launch."""
