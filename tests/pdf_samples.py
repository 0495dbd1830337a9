"""PDFs for the thumbnail tests and the benchmark: a plain invoice and the hostile kinds, built here."""

from __future__ import annotations

import zlib


def pdf_file(objects: list[bytes], *, root: int = 1, trailer_extra: bytes = b"") -> bytes:
    """A PDF of the numbered ``objects`` (1-based, the catalog first) with a correct cross-reference table."""
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root %d 0 R %s>>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1, root, trailer_extra, xref)
    return bytes(out)


def stream(data: bytes, extra: bytes = b"") -> bytes:
    return b"<< /Length %d %s>>\nstream\n" % (len(data), extra) + data + b"\nendstream"


def one_page(width: float, height: float, content: bytes, resources: bytes = b"<< >>",
             extra_objects: list[bytes] | None = None) -> bytes:
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %g %g] /Contents 4 0 R /Resources %s >>"
        % (width, height, resources),
        stream(content),
        *(extra_objects or []),
    ]
    return pdf_file(objects)


def invoice(width: float = 595, height: float = 842) -> bytes:
    """An A4 page (by default) with a coloured header band, a table of lines and a total."""
    lines = [b"0.1 0.3 0.7 rg 0 %g %g 80 re f" % (height - 80, width),
             b"BT /F1 28 Tf 1 1 1 rg 40 %g Td (INVOICE 2025-0042) Tj ET" % (height - 55)]
    for row in range(12):
        y = height - 140 - row * 24
        lines.append(b"BT /F1 12 Tf 0 0 0 rg 40 %g Td (Item %d  consulting hours) Tj ET" % (y, row + 1))
        lines.append(b"BT /F1 12 Tf %g %g Td (%d.00 EUR) Tj ET" % (width - 140, y, (row + 1) * 40))
    lines.append(b"0.9 0.1 0.1 rg 40 120 %g 2 re f" % (width - 80))
    lines.append(b"BT /F1 18 Tf 0 0 0 rg 40 90 Td (Total 3120.00 EUR) Tj ET")
    font = b"<< /Font << /F1 5 0 R >> >>"
    return one_page(width, height, b"\n".join(lines), font,
                    [b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"])


def image_bomb(side: int) -> bytes:
    """A page showing one RGB image of ``side`` x ``side`` pixels of zeros: ~1000x smaller deflated."""
    raw_size = side * side * 3
    packer = zlib.compressobj(9)
    chunk = bytes(1 << 22)
    body = bytearray()
    for start in range(0, raw_size, len(chunk)):
        body += packer.compress(chunk[: min(len(chunk), raw_size - start)])
    body += packer.flush()
    image = stream(bytes(body), b"/Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace /DeviceRGB "
                                b"/BitsPerComponent 8 /Filter /FlateDecode " % (side, side))
    return one_page(595, 842, b"q 595 0 0 842 0 0 cm /Im0 Do Q", b"<< /XObject << /Im0 5 0 R >> >>", [image])


def nested_forms(depth: int = 12, fanout: int = 10) -> bytes:
    """A "billion laughs" of form XObjects: each draws the next ``fanout`` times, ``depth`` levels deep."""
    forms = []
    first = 5
    for level in range(depth):
        if level == depth - 1:
            content = b"0 0 1 1 re f"
            resources = b"<< >>"
        else:
            content = b" ".join(b"/X Do" for _ in range(fanout))
            resources = b"<< /XObject << /X %d 0 R >> >>" % (first + level + 1)
        forms.append(stream(content, b"/Type /XObject /Subtype /Form /BBox [0 0 595 842] /Resources %s "
                                     % resources))
    return one_page(595, 842, b"/X Do", b"<< /XObject << /X 5 0 R >> >>", forms)


def deflated_zeros(size: int, unit: bytes = b" ") -> bytes:
    """A zlib stream of ``size`` repetitions of ``unit``, built in well under a second: one fully flushed
    deflate block of 16 MiB repeated (a full flush makes each copy independent), then the checksum."""
    block_raw = unit * ((1 << 24) // len(unit))
    packer = zlib.compressobj(9)
    block = packer.compress(block_raw) + packer.flush(zlib.Z_FULL_FLUSH)
    header, block = block[:2], block[2:]
    copies, rest = divmod(size, len(block_raw))
    checksum, block_sum = 1, zlib.adler32(block_raw)
    for _ in range(copies):
        checksum = _adler32_combine(checksum, block_sum, len(block_raw))
    tail_raw = block_raw[:rest]
    checksum = zlib.adler32(tail_raw, checksum)
    tail = zlib.compressobj(9, zlib.DEFLATED, -15)
    return header + block * copies + tail.compress(tail_raw) + tail.flush() + checksum.to_bytes(4, "big")


def _adler32_combine(first: int, second: int, second_length: int) -> int:
    """zlib's adler32_combine: the checksum of A+B from those of A and B (Python's zlib lacks it)."""
    base = 65521
    rem = second_length % base
    low = first & 0xFFFF
    high = (rem * low) % base
    low = (low + (second & 0xFFFF) + base - 1) % base
    high = (high + ((first >> 16) & 0xFFFF) + ((second >> 16) & 0xFFFF) + base - rem) % base
    return low | (high << 16)


def content_bomb(size: int) -> bytes:
    """A page whose content stream inflates to ``size`` bytes: PDFium must hold it whole to parse it."""
    data = deflated_zeros(size)
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R /Resources << >> >>",
        stream(data, b"/Filter /FlateDecode "),
    ]
    return pdf_file(objects)


def encrypted() -> bytes:
    """A one-page PDF that needs a user password to open (fpdf2's standard security handler)."""
    from fpdf import FPDF

    document = FPDF()
    document.set_encryption(owner_password="owner-secret", user_password="user-secret")
    document.add_page()
    document.set_font("Helvetica", size=16)
    document.cell(text="Invoice 7 - total 99.00 EUR")
    return bytes(document.output())
