"""A headless Chromium (Debian's ``chromium``) driven over the Chrome DevTools Protocol,
with the ``websockets`` client already in the locked packages. Everything waits on
events: the DevTools address printed at start, ``Page.loadEventFired``, promises the
page resolves (its ``browse:rendered`` event, image ``load`` events)."""

from __future__ import annotations

import json
import queue
import shutil
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest
from websockets.sync.client import connect

WIDTH, HEIGHT = 1280, 800
TIMEOUT = 60.0
"""Seconds to wait for one answer or event before the test fails (never slept)."""

WAIT_RENDERED = """
new Promise((resolve) => {
  const seen = () => Number(document.documentElement.getAttribute("data-rendered") || 0);
  if (seen() > %d && document.documentElement.getAttribute("data-view") === %s) return resolve(seen());
  document.addEventListener("browse:rendered", function h(e) {
    if (seen() > %d && e.detail.view === %s) {
      document.removeEventListener("browse:rendered", h);
      resolve(seen());
    }
  });
})
"""

WAIT_IMAGES = """
Promise.all(Array.from(document.querySelectorAll(%s)).filter((img) => {
  const r = img.getBoundingClientRect();
  return r.bottom > 0 && r.top < innerHeight && r.right > 0 && r.left < innerWidth;
}).map((img) => (img.complete && img.naturalWidth) ? [img.naturalWidth, img.naturalHeight]
  : new Promise((resolve) => {
      img.addEventListener("load", () => resolve([img.naturalWidth, img.naturalHeight]));
      img.addEventListener("error", () => resolve([0, 0]));
    })))
"""


def chromium() -> str:
    found = shutil.which("chromium")
    if found is None:
        pytest.fail(
            "Chromium is not installed: run 'bash scripts/setup.sh --browser' (the test command does)"
        )
    return found


class Browser:
    """One headless Chromium with one page of WIDTH x HEIGHT."""

    def __init__(self, profile: Path) -> None:
        self.proc = subprocess.Popen(
            [
                chromium(), "--headless", "--no-sandbox", "--disable-gpu",
                "--disable-dev-shm-usage", "--no-first-run", "--remote-debugging-port=0",
                f"--user-data-dir={profile}", f"--window-size={WIDTH},{HEIGHT}", "about:blank",
            ],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._drain, args=(lines,), daemon=True).start()
        address = ""
        while not address:
            try:
                line = lines.get(timeout=TIMEOUT)
            except queue.Empty:
                self.close()
                pytest.fail("Chromium printed no DevTools address")
            if line.startswith("DevTools listening on "):
                address = line.split(" on ", 1)[1].strip()
        self.ws = connect(address, max_size=None, open_timeout=TIMEOUT)
        self._id = 0
        self.events: list[dict[str, Any]] = []
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"
        ]
        self.send("Page.enable", session=True)
        self.send("Runtime.enable", session=True)
        self.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": WIDTH, "height": HEIGHT, "deviceScaleFactor": 1, "mobile": False},
            session=True,
        )

    def _drain(self, lines: queue.Queue[str]) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            lines.put(line)

    def send(
        self, method: str, params: dict[str, Any] | None = None, *, session: bool = False
    ) -> Any:
        self._id += 1
        message: dict[str, Any] = {"id": self._id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = self.session
        self.ws.send(json.dumps(message))
        while True:
            reply = json.loads(self.ws.recv(timeout=TIMEOUT))
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise AssertionError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_event(self, method: str) -> dict[str, Any]:
        for i, event in enumerate(self.events):
            if event.get("method") == method:
                return self.events.pop(i)
        while True:
            event = json.loads(self.ws.recv(timeout=TIMEOUT))
            if event.get("method") == method:
                return event
            self.events.append(event)

    def open(self, url: str) -> None:
        self.events.clear()
        self.send("Page.navigate", {"url": url}, session=True)
        self.wait_event("Page.loadEventFired")

    def js(self, expression: str) -> Any:
        """The value of ``expression`` (awaited when it is a promise)."""
        result = self.send(
            "Runtime.evaluate",
            {"expression": expression, "awaitPromise": True, "returnByValue": True},
            session=True,
        )
        if "exceptionDetails" in result:
            raise AssertionError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def rendered(self) -> int:
        return int(self.js('Number(document.documentElement.getAttribute("data-rendered") || 0)'))

    def wait_rendered(self, after: int, view: str = "table") -> int:
        """Wait until the page has rendered ``view`` more than ``after`` times in all."""
        v = json.dumps(view)
        return int(self.js(WAIT_RENDERED % (after, v, after, v)))

    def visible_images(self, selector: str) -> list[list[int]]:
        """Wait for the images matching ``selector`` inside the window to load; their sizes."""
        return list(self.js(WAIT_IMAGES % json.dumps(selector)))

    def screenshot(self) -> bytes:
        import base64

        data = self.send("Page.captureScreenshot", {"format": "png"}, session=True)["data"]
        return base64.b64decode(data)

    def close(self) -> None:
        try:
            if hasattr(self, "ws"):
                self.ws.close()
        finally:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
