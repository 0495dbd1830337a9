"""Previews in real Chromium (Debian's, driven by Playwright) and real PDFium, in their own processes."""

from __future__ import annotations

import io
import os
import signal
import time
from pathlib import Path

import pytest
import trio
from PIL import Image

from appliance.previews import (
    DocumentError,
    InlinePart,
    PreviewError,
    RenderCrashedError,
    RenderTimeoutError,
    open_previews,
)
from appliance.previews.document import CSP, safe_document
from tests import pdf_samples

CHROMIUM = "/usr/bin/chromium"
pytestmark = pytest.mark.slow


@pytest.fixture
async def previews():
    if not os.path.exists(CHROMIUM):  # noqa: ASYNC240 - one stat before the test
        pytest.fail("chromium missing: scripts/setup.sh installs Debian's chromium")
    async with open_previews(CHROMIUM, pdf_memory=512 * 1024 * 1024) as pv:
        yield pv


class Tracker:
    """A local HTTP server that answers anything with a 1x1 GIF and counts every connection it accepts."""

    def __init__(self) -> None:
        self.connections = 0
        self.requests: list[bytes] = []
        self.port = 0

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        self.port = listeners[0].socket.getsockname()[1]
        task_status.started()
        await trio.serve_listeners(self._answer, listeners)

    async def _answer(self, stream: trio.SocketStream) -> None:
        self.connections += 1
        gif = (b"GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\x00\x00\x00\x00\x00!\xf9\x04\x01\x00\x00\x00\x00"
               b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;")
        with trio.move_on_after(2):
            self.requests.append((await stream.receive_some(65536)).split(b"\r\n", 1)[0])
        await stream.send_all(b"HTTP/1.1 200 OK\r\nContent-Type: image/gif\r\nContent-Length: %d\r\n"
                              b"Connection: close\r\n\r\n" % len(gif) + gif)
        await stream.aclose()


def red_png(width: int = 120, height: int = 60) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (220, 0, 0)).save(out, format="PNG")
    return out.getvalue()


def hostile_email(port: int) -> str:
    remote = f"http://127.0.0.1:{port}"
    named = f"http://localhost:{port}"
    return f"""<!doctype html><html><head>
<link rel="stylesheet" href="{remote}/style.css">
<link rel="preconnect" href="{remote}"><link rel="dns-prefetch" href="//localhost:{port}">
<link rel="prefetch" href="{named}/prefetch"><link rel="preload" as="image" href="{remote}/preload.png">
<link rel="icon" href="{remote}/favicon.ico">
<style>@import url({remote}/import.css); body {{ background: url({remote}/bg.png) }}
@font-face {{ font-family: X; src: url({remote}/font.woff) }} h1 {{ font-family: X, sans-serif }}</style>
<script src="{remote}/track.js"></script><script>new Image().src = "{remote}/js-pixel";</script>
<meta http-equiv="refresh" content="0; url={remote}/refresh">
</head><body>
<h1 style="color: #00aa44">Receipt #42 from Shop</h1>
<img src="cid:logo@shop.example" width="120" height="60" alt="logo">
<img src="{remote}/remote.png" width="100" height="100">
<img src="{named}/pixel.gif?u=42" width="1" height="1">
<img srcset="{remote}/srcset.png 2x"><picture><source srcset="{remote}/source.png"><img></picture>
<iframe src="{remote}/frame"></iframe><object data="{remote}/object"></object><embed src="{remote}/embed">
<video poster="{remote}/poster.png" src="{remote}/video.mp4"></video>
<audio src="{remote}/a.mp3" autoplay></audio>
<svg width="10" height="10"><image href="{remote}/svg.png" width="10" height="10"/></svg>
<form action="{remote}/form"><input type="image" src="{remote}/button.png"></form>
<table style="background-image: url('{remote}/td.png')"><tr><td>Total</td><td><b>$42.00</b></td></tr></table>
</body></html>"""


def colours(png: bytes) -> dict[tuple[int, int, int], int]:
    image = Image.open(io.BytesIO(png)).convert("RGB")
    return {colour: count for count, colour in image.getcolors(maxcolors=1 << 20)}


def test_document_puts_the_csp_first_and_inlines_only_known_image_parts():
    doc = safe_document('<p><img src="cid:Logo%40x"><img src="cid:missing"><img src="CID:<doc@x>"></p>',
                        {"<logo@x>": InlinePart("image/png", b"\x89PNG"),
                         "doc@x": InlinePart("application/pdf", b"%PDF")})
    assert doc.index(CSP) < doc.index("<p>")
    assert 'src="data:image/png;base64,iVBORw=="' in doc
    assert 'src="cid:missing"' in doc and 'src="CID:<doc@x>"' in doc  # a PDF part is never inlined
    with pytest.raises(DocumentError, match="over the"):
        safe_document("x" * (3 * 1024 * 1024))


async def test_email_renders_with_inline_images_and_fetches_nothing(previews, nursery):
    tracker = Tracker()
    await nursery.start(tracker.serve)
    rendered = await previews.render_html(
        hostile_email(tracker.port), inline={"logo@shop.example": InlinePart("image/png", red_png())})
    image = Image.open(io.BytesIO(rendered.png))
    assert image.format == "PNG" and image.width == 800 and 200 <= image.height <= 8000
    seen = colours(rendered.png)
    assert len(seen) > 20, "a blank page"  # anti-aliased text gives many shades
    assert seen.get((220, 0, 0), 0) >= 120 * 60 * 0.9, "the cid: image is not shown"
    assert any(g > 120 and r < 60 and b < 120 for (r, g, b) in seen), "the green heading is not shown"
    assert tracker.connections == 0, f"the page reached the network: {tracker.requests}"


async def test_html_bomb_fails_within_its_deadline_and_the_next_render_works(previews):
    first = await previews.render_html("<p>warm</p>")
    browsers = chromium_browsers(first.pid)
    bomb = "<div>" * 150_000 + "x" + "<table>" + "<tr><td>cell</td></tr>" * 20_000
    started = time.monotonic()
    with pytest.raises(PreviewError) as caught:
        await previews.render_html(bomb, deadline=4)
    elapsed = time.monotonic() - started
    assert elapsed < 4 + 1.5, f"took {elapsed:.1f}s: {caught.value}"
    assert isinstance(caught.value, RenderTimeoutError) or "Timeout" in str(caught.value)
    after = await previews.render_html("<h1>Next receipt</h1><p>Total: 10.00 EUR</p>")
    assert len(colours(after.png)) > 5
    if isinstance(caught.value, RenderTimeoutError):  # the killed process took its browser with it
        assert after.pid != first.pid
        for pid in [first.pid, *browsers]:
            await wait_gone(pid)


async def test_a_killed_browser_is_replaced_and_the_next_render_succeeds(previews):
    first = await previews.render_html("<p>first</p>")
    browsers = chromium_browsers(first.pid)
    assert len(browsers) == 1
    os.kill(browsers[0], signal.SIGKILL)
    await wait_gone(browsers[0])
    second = await previews.render_html("<h1>second</h1><p>Total 5.00 USD</p>")
    assert second.pid == first.pid  # the same render process, with a new browser
    assert chromium_browsers(second.pid) not in ([], browsers)
    assert len(colours(second.png)) > 5


async def test_the_render_process_retires_after_its_share_of_renders():
    async with open_previews(CHROMIUM, renders_per_browser=2) as previews:
        pids = [(await previews.render_html(f"<p>receipt {n}</p>")).pid for n in range(3)]
    assert pids[0] == pids[1] != pids[2]


async def test_pdf_thumbnails_have_the_longest_side_400(previews, tmp_path):
    portrait, landscape = tmp_path / "a4.pdf", tmp_path / "letter.pdf"
    portrait.write_bytes(pdf_samples.invoice(595, 842))
    landscape.write_bytes(pdf_samples.invoice(792, 612))
    a4 = await previews.pdf_thumbnail(portrait)
    letter = await previews.pdf_thumbnail(landscape)
    assert (a4.width, a4.height, a4.pages) == (283, 400, 1)
    assert (letter.width, letter.height) == (400, 309) or (letter.width, letter.height) == (400, 310)
    image = Image.open(io.BytesIO(a4.png))
    assert image.size == (283, 400)
    assert any(b > 120 and r < 80 for (r, g, b) in colours(a4.png)), "the blue header band is missing"


async def test_broken_pdfs_fail_clearly(previews, tmp_path):
    samples = {
        "truncated": pdf_samples.invoice()[:400],
        "garbage": os.urandom(5000),
        "encrypted": pdf_samples.encrypted(),
        "enormous": pdf_samples.one_page(14_400 * 10, 842, b"0 0 1 1 re f"),
        "empty-box": pdf_samples.one_page(1e9, 1e9, b"0 0 1 1 re f"),
    }
    reasons = {}
    for kind, data in samples.items():
        path = tmp_path / f"{kind}.pdf"
        path.write_bytes(data)
        with pytest.raises(DocumentError, match="PDF") as caught:
            await previews.pdf_thumbnail(path)
        reasons[kind] = str(caught.value)
    assert "password" in reasons["encrypted"] and "corrupted" in reasons["garbage"]
    assert "point limit" in reasons["enormous"] and "MediaBox" in reasons["empty-box"]


async def test_pdf_bombs_fail_in_bounded_time_and_memory_and_thumbnails_go_on(previews, tmp_path):
    bombs = {"content": pdf_samples.content_bomb(3_000_000_000), "forms": pdf_samples.nested_forms(10, 10)}
    good = tmp_path / "good.pdf"
    good.write_bytes(pdf_samples.invoice())
    assert (await previews.pdf_thumbnail(good)).height == 400  # warm: the deadline is the file's alone
    for name, data in bombs.items():
        path = tmp_path / f"{name}.pdf"
        path.write_bytes(data)
        started = time.monotonic()
        with pytest.raises((RenderCrashedError, RenderTimeoutError, DocumentError)):
            await previews.pdf_thumbnail(path, deadline=5)
        assert time.monotonic() - started < 5 + 1.5, name
        assert (await previews.pdf_thumbnail(good)).height == 400


def chromium_browsers(pid: int) -> list[int]:
    """Chromium's browser process(es) under the render process ``pid`` (Playwright's driver in between)."""
    found, todo = [], [pid]
    while todo:
        parent = todo.pop()
        for child in _children(parent):
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
            if b"chromium" in cmdline[0] and not any(arg.startswith(b"--type=") for arg in cmdline):
                found.append(child)
            else:
                todo.append(child)
    return found


def _children(pid: int) -> list[int]:
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except FileNotFoundError:
        return []
    out = []
    for task in tasks:
        try:
            out += [int(c) for c in Path(f"/proc/{pid}/task/{task}/children").read_text().split()]
        except FileNotFoundError:
            pass
    return out


async def wait_gone(pid: int, deadline: float = 10) -> None:
    with trio.fail_after(deadline):
        while True:
            try:
                state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]  # noqa: ASYNC240
            except FileNotFoundError:
                return
            if state == "Z":
                return
            await trio.sleep(0.05)
