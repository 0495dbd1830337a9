"""Errors of the previews package (no Trio here: render processes import this module too).

    PreviewError                    a preview could not be made; the message says why
     ├─ DocumentError               the input itself is refused (too large, not a PDF, encrypted, ...)
     ├─ RenderTimeoutError          the render did not finish within its deadline (the process was killed)
     └─ RendererUnavailableError    Chromium or PDFium cannot run here (CHROMIUM_PATH missing, crashed)
"""

from __future__ import annotations


class PreviewError(Exception):
    """A preview could not be made."""


class DocumentError(PreviewError):
    """The input is refused: too large, not a PDF, encrypted, an impossible page."""


class RenderTimeoutError(PreviewError):
    """The render missed its deadline; its process was killed and is replaced on the next call."""


class RendererUnavailableError(PreviewError):
    """The renderer cannot run: the browser is missing or its process died."""
