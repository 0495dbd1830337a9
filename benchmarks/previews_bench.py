"""Previews, side by side in one run: email renders/s and PDF thumbnails/s, ours against their peers.

Email (a 30-row receipt with a cid: logo, rendered to an 800 px wide PNG), one render at a time:
  ours           the render process with its warm Chromium, a new context per render (what the worker runs)
  in-process     the same renderer called directly in this process: what the render process costs
  page reused    one warm page for every render: what a new context per render costs
  launch each    Playwright launching a browser per render (the naive approach)
  cli            ``chromium --headless --screenshot`` per render
PDF (an A4 invoice, first page, longest side 400 px, PNG):
  ours           the thumbnail process (PDFium), one file at a time; and two at once (two workers)
  in-process     pypdfium2 called directly in this process
  pdf2image      pdf2image with Debian's poppler-utils (pdftoppm), as most code does it

    PYTHONPATH=. .venv/bin/python benchmarks/previews_bench.py [--renders 20] [--thumbnails 300]
    (--renders 0: the PDF part only)
"""

from __future__ import annotations

import argparse
import io
import os
import resource
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import trio
from PIL import Image

from appliance.previews import InlinePart, chromium, open_previews, pdf
from appliance.previews.document import safe_document
from tests import pdf_samples

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")


def receipt_email() -> tuple[str, dict[str, InlinePart]]:
    rows = "".join(f"<tr><td>Item {i} - widget, blue, size M</td>"
                   f"<td style='text-align:right'>{i * 3}.50 EUR</td></tr>" for i in range(1, 31))
    html = f"""<html><body style="font-family: sans-serif; margin: 24px">
<table width="100%" style="background:#123f8c;color:white"><tr><td>
<img src="cid:logo@shop" width="120" height="40"><h1>Your receipt</h1></td></tr></table>
<p>Thank you for your order #A-20251126-42.</p>
<table width="100%" cellpadding="6" style="border-collapse:collapse;border:1px solid #ccc">{rows}
<tr><td><b>Total</b></td><td style="text-align:right"><b>1411.00 EUR</b></td></tr></table>
<p style="color:#666;font-size:12px">Shop Ltd, 1 Main Street. Questions? Reply to this email.</p>
<img src="https://tracker.example/open.gif?id=42" width="1" height="1"></body></html>"""
    logo = io.BytesIO()
    Image.new("RGB", (120, 40), (240, 160, 0)).save(logo, format="PNG")
    return html, {"logo@shop": InlinePart("image/png", logo.getvalue())}


def cpu_seconds() -> float:
    """CPU time of this process and every descendant: the reaped ones through RUSAGE_CHILDREN, the live ones
    (render processes, Playwright's driver, Chromium and what its processes reaped) from /proc."""
    own, reaped = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    total = own.ru_utime + own.ru_stime + reaped.ru_utime + reaped.ru_stime
    ticks = os.sysconf("SC_CLK_TCK")
    todo = [os.getpid()]
    while todo:
        pid = todo.pop()
        for task in _listdir(f"/proc/{pid}/task"):
            for child in _read(f"/proc/{pid}/task/{task}/children").split():
                fields = _read(f"/proc/{child}/stat").rsplit(")", 1)[-1].split()
                if len(fields) > 14:
                    total += sum(int(f) for f in fields[11:15]) / ticks  # utime stime cutime cstime
                todo.append(int(child))
    return total


def _listdir(path: str) -> list[str]:
    try:
        return os.listdir(path)
    except OSError:
        return []


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def rate(n: int, fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    for _ in range(n):
        fn()
    return n / (time.perf_counter() - started)


async def arate(n: int, fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    for _ in range(n):
        await fn()
    return n / (time.perf_counter() - started)


# -- email -------------------------------------------------------------------------------------------------
def launch_each(html: str) -> bytes:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, chromium_sandbox=os.geteuid() != 0,
                                    args=list(chromium.LAUNCH_ARGS))
        page = browser.new_page(java_script_enabled=False, offline=True,
                                viewport={"width": 800, "height": 200})
        page.route("**/*", lambda route: route.abort())
        page.set_content(html)
        png = page.screenshot(full_page=True)
        browser.close()
    return png


def cli_screenshot(html_file: Path, out: Path) -> bytes:
    sandbox = ["--no-sandbox"] if os.geteuid() == 0 else []
    # JavaScript stays on: with --blink-settings=scriptEnabled=false, --screenshot writes nothing.
    subprocess.run([CHROMIUM, "--headless", *sandbox, *chromium.LAUNCH_ARGS,
                    "--window-size=800,1400", f"--screenshot={out}", html_file.as_uri()],
                   check=True, capture_output=True, timeout=60)
    return out.read_bytes()


class ReusedPage:
    def __init__(self) -> None:
        from playwright.sync_api import sync_playwright

        self._driver = sync_playwright().start()
        self.browser = self._driver.chromium.launch(
            executable_path=CHROMIUM, chromium_sandbox=os.geteuid() != 0, args=list(chromium.LAUNCH_ARGS))
        self.page = self.browser.new_page(java_script_enabled=False, offline=True,
                                          viewport={"width": 800, "height": 200})
        self.page.route("**/*", lambda route: route.abort())

    def render(self, html: str) -> bytes:
        self.page.set_content(html)
        return self.page.screenshot(full_page=True)

    def close(self) -> None:
        self.browser.close()
        self._driver.stop()


async def email_rates(n: int) -> dict[str, tuple[float, float]]:
    html, inline = receipt_email()
    document = safe_document(html, inline)
    request = chromium.RenderRequest(html, inline)
    out: dict[str, tuple[float, float]] = {}

    async with open_previews(CHROMIUM) as previews:
        await previews.render_html(html, inline=inline)  # warm: process, driver, browser
        cpu = cpu_seconds()
        per_s = await arate(n, lambda: previews.render_html(html, inline=inline))
        out["ours (render process, new context each)"] = (per_s, cpu_seconds() - cpu)

    chromium.render(CHROMIUM, request)  # warm the in-process browser
    cpu = cpu_seconds()
    per_s = rate(n, lambda: chromium.render(CHROMIUM, request))
    out["in-process (same renderer, no process hop)"] = (per_s, cpu_seconds() - cpu)
    chromium._shutdown()

    reused = ReusedPage()
    reused.render(document)
    cpu = cpu_seconds()
    per_s = rate(n, lambda: reused.render(document))
    out["one page reused for every render"] = (per_s, cpu_seconds() - cpu)
    reused.close()

    few = max(3, n // 4)
    cpu = cpu_seconds()
    per_s = rate(few, lambda: launch_each(document))
    out["launch a browser per render (naive)"] = (per_s, cpu_seconds() - cpu)

    with tempfile.TemporaryDirectory() as tmp:
        page = Path(tmp) / "email.html"
        page.write_text(document)
        cpu = cpu_seconds()
        per_s = rate(few, lambda: cli_screenshot(page, Path(tmp) / "shot.png"))
        out["chromium --headless --screenshot"] = (per_s, cpu_seconds() - cpu)
    return {name: (per_s, cpu / (n if name.startswith(("ours", "in-", "one")) else few))
            for name, (per_s, cpu) in out.items()}


# -- PDF ---------------------------------------------------------------------------------------------------
def pdf2image_thumbnail(path: str) -> bytes:
    from pdf2image import convert_from_path

    image = convert_from_path(path, first_page=1, last_page=1, size=400)[0]
    out = io.BytesIO()
    image.save(out, format="PNG", compress_level=3)
    return out.getvalue()


async def pdf_rates(n: int, path: str) -> dict[str, tuple[float, float]]:
    out: dict[str, tuple[float, float]] = {}
    async with open_previews(CHROMIUM) as previews:
        await previews.pdf_thumbnail(path)
        cpu = cpu_seconds()
        per_s = await arate(n, lambda: previews.pdf_thumbnail(path))
        out["ours (thumbnail process, pypdfium2)"] = (per_s, cpu_seconds() - cpu)
    async with open_previews(CHROMIUM) as first, open_previews(CHROMIUM) as second:
        await first.pdf_thumbnail(path)
        await second.pdf_thumbnail(path)
        cpu = cpu_seconds()
        started = time.perf_counter()
        async with trio.open_nursery() as nursery:
            for previews in (first, second):
                nursery.start_soon(arate, n // 2, lambda p=previews: p.pdf_thumbnail(path))
        out["ours, two workers at once (sum)"] = (n // 2 * 2 / (time.perf_counter() - started), cpu_seconds() - cpu)
    pdf.thumbnail(path)
    cpu = cpu_seconds()
    per_s = rate(n, lambda: pdf.thumbnail(path))
    out["pypdfium2 in-process"] = (per_s, cpu_seconds() - cpu)
    few = max(10, n // 5)
    pdf2image_thumbnail(path)
    cpu = cpu_seconds()
    per_s = rate(few, lambda: pdf2image_thumbnail(path))
    out["pdf2image + poppler (pdftoppm)"] = (per_s, cpu_seconds() - cpu)
    return {name: (per_s, cpu / (few if name.startswith("pdf2image") else n))
            for name, (per_s, cpu) in out.items()}


def table(title: str, rows: dict[str, tuple[float, float]]) -> None:
    base = next(iter(rows.values()))[0]
    print(f"\n{title}")
    print(f"  {'':46} {'per s':>8} {'CPU ms each':>12} {'ours / this':>12}")
    for name, (per_s, cpu) in rows.items():
        print(f"  {name:46} {per_s:8.2f} {cpu * 1000:12.0f} {base / per_s:11.2f}x")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--renders", type=int, default=20)
    parser.add_argument("--thumbnails", type=int, default=300)
    args = parser.parse_args()
    print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start; chromium {CHROMIUM}")
    if args.renders:
        table(f"email renders, {args.renders} each (launching peers: a quarter as many)",
              await email_rates(args.renders))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "invoice.pdf"
        path.write_bytes(pdf_samples.invoice())
        table(f"PDF first-page thumbnails, {args.thumbnails} each (pdf2image: a fifth as many)",
              await pdf_rates(args.thumbnails, str(path)))
    print(f"\nload average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":  # the render processes are spawned: they import this module, and must not run it
    trio.run(main)
