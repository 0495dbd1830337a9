"""The small picture of an email for lists: the top of its render, scaled down (Pillow, in a thread)."""

from __future__ import annotations

import io

from PIL import Image

THUMBNAIL_SIDE = 400
TOP_RATIO = 1.3  # keep at most 1.3 widths of the email's top: a list shows the header and the total


def email_thumbnail(png: bytes, side: int = THUMBNAIL_SIDE) -> bytes:
    """The top of a rendered email, its longer side ``side`` pixels, as PNG."""
    with Image.open(io.BytesIO(png)) as image:
        top = image.crop((0, 0, image.width, min(image.height, int(image.width * TOP_RATIO))))
        top.thumbnail((side, side), Image.Resampling.LANCZOS)
        out = io.BytesIO()
        top.save(out, format="PNG", optimize=False, compress_level=6)
    return out.getvalue()
