#!/usr/bin/env python
"""Open every built chapter of the book in headless Chromium and check that it rendered.

For each ``_build/html/notebooks/*.html`` (and ``index.html``/``intro.html``) the page is
loaded through the DevTools protocol and must have:

* every ``<img>`` loaded (``complete`` and ``naturalWidth > 0``);
* at least one figure on chapter pages that are expected to have one (``--min-images``);
* no error output: no element with the MyST-NB error/traceback classes and no "Traceback"
  in the page text.

A full-page PNG screenshot of each page goes to ``_build/screenshots/``. Exit status 0 when
every page passes, 1 otherwise, 2 when Chromium is missing (install: ``apt-get install -y
chromium``).

Usage: ``python scripts/check_book.py [--html _build/html] [--out _build/screenshots]``
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--hide-scrollbars", "--window-size=1280,900")

PAGE_JS = r"""
(() => {
  const imgs = [...document.images].map(i => ({src: i.currentSrc || i.src,
      complete: i.complete, width: i.naturalWidth, height: i.naturalHeight}));
  const errorSel = ".output.error, .output.traceback, div.cell_output .traceback, " +
                   "div.cell_output .output.stderr .ansi-red-fg";
  const errors = [...document.querySelectorAll(errorSel)].map(e => e.innerText.slice(0, 300));
  const text = document.body ? document.body.innerText : "";
  const cells = [...document.querySelectorAll("div.cell_output table td, div.cell_output table th")]
      .map(c => c.innerText.trim());
  const nan = cells.filter(c => c === "NaN" || c === "nan").length;
  const cut = cells.filter(c => c === "..." || c === "\u2026" || /\.\.\.$|\u2026$/.test(c)).length;
  const downloads = [...document.querySelectorAll("a.download, a[download]")].map(a => a.href);
  return JSON.stringify({title: document.title, imgs: imgs, errors: errors, nan: nan, cut: cut,
                         downloads: downloads,
                         traceback: /Traceback \(most recent call last\)/.test(text),
                         height: document.documentElement.scrollHeight});
})()
"""


def find_chromium() -> str | None:
    env = os.environ.get("CHROMIUM")
    if env:
        return env if shutil.which(env) else None
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


class Browser:
    """A headless Chromium with a DevTools websocket per page (tornado client)."""

    def __init__(self, binary: str) -> None:
        self.profile = tempfile.TemporaryDirectory(prefix="slimlib-chromium-",
                                                   ignore_cleanup_errors=True)
        # own session: close() can stop Chromium's helper processes (renderer, crashpad)
        # too, which otherwise keep writing into the profile while it is being removed
        self.proc = subprocess.Popen(
            [binary, *FLAGS, f"--user-data-dir={self.profile.name}",
             "--remote-debugging-port=0", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            start_new_session=True)
        self.port = self._wait_port()

    def _wait_port(self) -> int:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            match = re.search(r"DevTools listening on ws://[^:]+:(\d+)/", line)
            if match:
                return int(match.group(1))
        raise RuntimeError("Chromium exited before opening the DevTools port")

    def new_page(self) -> str:
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}/json/new?about:blank",
                                     method="PUT")
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.load(resp)["webSocketDebuggerUrl"]

    def close(self) -> None:
        self._signal_group(signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._signal_group(signal.SIGKILL)
            self.proc.wait(timeout=10)
        self._signal_group(signal.SIGKILL)  # helpers that outlived the browser process
        for _ in range(5):  # a helper may still flush a file for a moment
            shutil.rmtree(self.profile.name, ignore_errors=True)
            if not os.path.exists(self.profile.name):
                break
            time.sleep(0.2)
        self.profile.cleanup()

    def _signal_group(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, sig)


class Page:
    def __init__(self, ws) -> None:
        self.ws = ws
        self.next_id = 0
        self.events: list[dict] = []

    @classmethod
    async def connect(cls, url: str) -> Page:
        from tornado.websocket import websocket_connect

        ws = await websocket_connect(url, max_message_size=512 * 2**20)
        return cls(ws)

    async def call(self, method: str, **params) -> dict:
        self.next_id += 1
        my_id = self.next_id
        await self.ws.write_message(json.dumps({"id": my_id, "method": method, "params": params}))
        while True:
            msg = await self.ws.read_message()
            if msg is None:
                raise RuntimeError("DevTools connection closed")
            data = json.loads(msg)
            if data.get("id") == my_id:
                if "error" in data:
                    raise RuntimeError(f"{method}: {data['error']}")
                return data.get("result", {})
            self.events.append(data)

    async def wait_event(self, name: str, timeout: float) -> None:
        if any(e.get("method") == name for e in self.events):
            return

        async def _wait() -> None:
            while True:
                msg = await self.ws.read_message()
                if msg is None:
                    raise RuntimeError("DevTools connection closed")
                data = json.loads(msg)
                if data.get("method") == name:
                    return
                self.events.append(data)

        await asyncio.wait_for(_wait(), timeout)


async def check_page(browser: Browser, html: Path, shot: Path, timeout: float) -> dict:
    page = await Page.connect(browser.new_page())
    await page.call("Page.enable")
    await page.call("Page.navigate", url=html.resolve().as_uri())
    await page.wait_event("Page.loadEventFired", timeout)
    # let lazy images decode
    await page.call("Runtime.evaluate", awaitPromise=True, expression=(
        "Promise.all([...document.images].map(i => i.decode ? i.decode().catch(() => null) "
        ": null))"))
    result = await page.call("Runtime.evaluate", expression=PAGE_JS, returnByValue=True)
    info = json.loads(result["result"]["value"])
    height = min(int(info["height"]), 16000)
    await page.call("Emulation.setDeviceMetricsOverride", width=1280, height=max(height, 600),
                    deviceScaleFactor=1, mobile=False)
    await asyncio.sleep(1.0)  # let the page lay out again at the new height (else it is shifted)
    png = await page.call("Page.captureScreenshot", format="png", clip={
        "x": 0, "y": 0, "width": 1280, "height": max(height, 600), "scale": 1})
    shot.write_bytes(base64.b64decode(png["data"]))
    page.ws.close()
    return info


def pages(html_dir: Path) -> list[Path]:
    chapters = sorted((html_dir / "notebooks").glob("*.html"))
    intro = [p for p in (html_dir / "intro.html",) if p.is_file()]
    return intro + chapters


def run(html_dir: Path, out: Path, min_images: int, timeout: float,
        binary: str | None = None) -> list[dict]:
    """Check every page; return one report dict per page (``ok``, ``problems``, ...)."""
    binary = binary or find_chromium()
    if binary is None:
        raise FileNotFoundError("no Chromium found (apt-get install -y chromium, or set CHROMIUM)")
    found = pages(html_dir)
    if not found:
        raise FileNotFoundError(f"no built pages under {html_dir}; build the book first")
    out.mkdir(parents=True, exist_ok=True)
    browser = Browser(binary)
    reports = []
    try:
        for html in found:
            shot = out / f"{html.stem}.png"
            info = asyncio.run(check_page(browser, html, shot, timeout))
            problems = []
            bad = [i["src"] for i in info["imgs"] if not i["complete"] or i["width"] <= 0]
            if bad:
                problems.append(f"{len(bad)} image(s) not loaded: {bad[:3]}")
            n_fig = sum(1 for i in info["imgs"] if i["width"] > 0
                        and ("_images" in i["src"] or i["src"].startswith("data:image")))
            if html.parent.name == "notebooks" and n_fig < min_images:
                problems.append(f"only {n_fig} figure(s), expected >= {min_images}")
            if info["errors"]:
                problems.append(f"error output: {info['errors'][:2]}")
            if info.get("nan"):
                problems.append(f"{info['nan']} NaN table cell(s) (show '—' with a footnote)")
            if info.get("cut"):
                problems.append(f"{info['cut']} table cell(s) cut with '…'")
            missing = [d for d in info.get("downloads", [])
                       if d.startswith("file://")
                       and not Path(urllib.parse.unquote(d[len("file://"):])).is_file()]
            if missing:
                problems.append(f"{len(missing)} download link(s) without a file: {missing[:2]}")
            if info["traceback"]:
                problems.append("'Traceback' in the page text")
            reports.append({"page": str(html.relative_to(html_dir)), "images": len(info["imgs"]),
                            "downloads": len(info.get("downloads", [])),
                            "figures": n_fig, "screenshot": str(shot), "ok": not problems,
                            "problems": problems})
    finally:
        browser.close()
    return reports


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--html", default="_build/html", type=Path)
    parser.add_argument("--out", default="_build/screenshots", type=Path)
    parser.add_argument("--min-images", type=int, default=1,
                        help="figures every chapter page must show (default 1)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per page load")
    args = parser.parse_args(argv)
    if find_chromium() is None:
        print("check_book: Chromium not found; install it with `apt-get install -y chromium`",
              file=sys.stderr)
        return 2
    reports = run(args.html, args.out, args.min_images, args.timeout)
    for r in reports:
        status = "ok  " if r["ok"] else "FAIL"
        print(f"{status} {r['page']}: {r['figures']} figure(s), {r['images']} image(s)"
              + (f" — {'; '.join(r['problems'])}" if r["problems"] else ""))
    print(f"screenshots: {args.out}")
    return 0 if all(r["ok"] for r in reports) else 1


if __name__ == "__main__":
    sys.exit(main())
