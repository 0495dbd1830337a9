"""The PDF process: a PDF's first page to a PNG whose longest side is ``longest`` pixels, and a PDF's text
(for the receipts sync), with PDFium.

This module runs only inside a thumbnail process that :mod:`appliance.previews.pool` starts: PDFium is not
thread-safe and a hostile file may crash it, so it lives in a process of its own that does one file at a
time under an address-space limit (:func:`limit_memory`), and that the worker kills when a file misses its
deadline. A decompression bomb then ends as a ``MemoryError`` or a killed process, never a dead worker.
"""

from __future__ import annotations

import io
import math
import os
import resource
from dataclasses import dataclass

from appliance.previews.errors import DocumentError

MAX_PDF_BYTES = 50 * 1024 * 1024
MAX_PAGE_POINTS = 14_400  # the PDF specification's largest page side (200 inches)
MEMORY_LIMIT = 1024 * 1024 * 1024  # address space of the thumbnail process
TEXT_LIMIT = 200_000
_LOAD_ERRORS = {  # pypdfium2.raw.FPDF_ERR_*
    2: "not found or unreadable", 3: "not a PDF or corrupted", 4: "encrypted: it needs a password",
    5: "protected by an unsupported security handler", 6: "has a broken first page",
}


@dataclass(frozen=True)
class Thumbnail:
    png: bytes
    width: int
    height: int
    pages: int


def limit_memory(limit: int = MEMORY_LIMIT) -> None:
    """trio-parallel runs this first in every thumbnail process: cap its address space."""
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def start() -> int:
    """Load PDFium and Pillow in this process (a cold start is not charged to the first file's deadline)."""
    import PIL.PngImagePlugin  # noqa: F401
    import pypdfium2  # noqa: F401

    return os.getpid()


def text(data: bytes, limit: int = TEXT_LIMIT) -> str:
    """The text of a PDF's pages, up to about ``limit`` characters ("" for a PDF PDFium cannot open)."""
    import pypdfium2 as pdfium

    try:
        document = pdfium.PdfDocument(data)
    except pdfium.PdfiumError:
        return ""
    try:
        chunks: list[str] = []
        for page in document:
            textpage = page.get_textpage()
            chunks.append(textpage.get_text_bounded())
            textpage.close()
            page.close()
            if sum(map(len, chunks)) > limit:
                break
        return "\n".join(chunks).replace("\r\n", "\n")
    finally:
        document.close()


def thumbnail(path: str, longest: int = 400) -> Thumbnail:
    """The first page of the PDF at ``path``, scaled so its longer side is ``longest`` pixels."""
    import pypdfium2 as pdfium

    size = os.stat(path).st_size
    if size > MAX_PDF_BYTES:
        raise DocumentError(f"PDF of {size} bytes is over the {MAX_PDF_BYTES} byte limit")
    try:
        document = pdfium.PdfDocument(path)
    except pdfium.PdfiumError as exc:
        reason = _LOAD_ERRORS.get(exc.err_code or 0, str(exc))
        raise DocumentError(f"PDF cannot be opened: {reason}") from None
    try:
        pages = len(document)
        if pages == 0:
            raise DocumentError("PDF has no pages")
        try:
            page = document[0]
        except pdfium.PdfiumError as exc:
            raise DocumentError(f"PDF's first page cannot be read: {exc}") from None
        try:
            return _render(page, longest, pages)
        finally:
            page.close()
    finally:
        document.close()


def _render(page, longest: int, pages: int) -> Thumbnail:  # a pypdfium2 PdfPage
    import pypdfium2 as pdfium

    box = page.get_mediabox(fallback_ok=False)
    if box is not None and (box[2] - box[0]) * (box[3] - box[1]) == 0:
        raise DocumentError("PDF's first page has an empty MediaBox, or one too large for PDFium")
    width, height = page.get_size()
    if not (math.isfinite(width) and math.isfinite(height)) or width <= 0 or height <= 0:
        raise DocumentError(f"PDF's first page has an impossible size {width}x{height}")
    if max(width, height) > MAX_PAGE_POINTS:
        raise DocumentError(f"PDF's first page is {width:.0f}x{height:.0f} points, over the "
                            f"{MAX_PAGE_POINTS} point limit of the PDF format")
    scale = longest / max(width, height)
    try:
        bitmap = page.render(scale=scale, may_draw_forms=False)
    except pdfium.PdfiumError as exc:
        raise DocumentError(f"PDF's first page cannot be rendered: {exc}") from None
    except MemoryError:
        raise DocumentError("PDF's first page needs more memory than a thumbnail may use") from None
    image = bitmap.to_pil()
    out = io.BytesIO()
    image.save(out, format="PNG", compress_level=3)
    return Thumbnail(out.getvalue(), image.width, image.height, pages)
