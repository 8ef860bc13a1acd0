"""A minimal headless-Chromium driver over the DevTools protocol (`--remote-debugging-pipe`).

Used by the viewer's browser tests, its benchmark and the screenshot in docs/: it loads a
page, evaluates JavaScript, types keys and takes screenshots, with no dependency beyond the
Debian `chromium` package (no Selenium, no websocket library): the protocol travels as
NUL-separated JSON over file descriptors 3 and 4 of the browser process.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from mis_eval.core.files import atomic_write

# Headless, offline, throwaway-profile Chromium: the background-networking flags keep it from
# dialling out of a closed network at every start. Shared with the leaderboard browser test.
HEADLESS_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-extensions",
)


class BrowserError(RuntimeError):
    pass


def find_chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


class Chromium:
    """`with Chromium() as b: b.open(url); b.eval("1+1")` — one headless browser, one tab."""

    def __init__(self, binary: str | None = None, *, width: int = 1400, height: int = 1000) -> None:
        self.binary = binary or find_chromium()
        if self.binary is None:
            raise BrowserError("headless Chromium not found (Debian: apt-get install chromium)")
        self.size = (width, height)
        self.events: list[dict[str, Any]] = []
        self._id = 0
        self._buf = b""
        self.session: str | None = None

    def __enter__(self) -> Chromium:
        self._profile = tempfile.TemporaryDirectory(prefix="mis-eval-chromium-")
        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()

        def wire() -> None:  # runs in the child: the protocol pipes become its fds 3 and 4
            a, b = os.dup(to_child_r), os.dup(from_child_w)
            os.dup2(a, 3)
            os.dup2(b, 4)

        self.proc = subprocess.Popen(
            [
                self.binary or "chromium",
                *HEADLESS_FLAGS,
                "--remote-debugging-pipe",
                f"--user-data-dir={self._profile.name}",
                f"--window-size={self.size[0]},{self.size[1]}",
                "about:blank",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            pass_fds=(3, 4),
            preexec_fn=wire,
        )
        os.close(to_child_r)
        os.close(from_child_w)
        target = self.call("Target.createTarget", {"url": "about:blank"}, session=False)["targetId"]
        self.session = self.call(
            "Target.attachToTarget", {"targetId": target, "flatten": True}, session=False
        )["sessionId"]
        for domain in ("Page", "Runtime"):
            self.call(f"{domain}.enable")
        self.call(
            "Emulation.setDeviceMetricsOverride",
            {"width": self.size[0], "height": self.size[1], "deviceScaleFactor": 1, "mobile": False},
        )
        return self

    def __exit__(self, *exc: object | TracebackType) -> None:
        with contextlib.suppress(BrowserError):
            self.call("Browser.close", session=False, timeout=5)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._to_child)
        os.close(self._from_child)
        self._profile.cleanup()

    def _read_message(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._from_child], [], [], left)[0]:
                raise BrowserError("timed out waiting for the browser")
            chunk = os.read(self._from_child, 1 << 20)
            if not chunk:
                raise BrowserError("the browser closed the protocol pipe")
            self._buf += chunk
        raw, self._buf = self._buf.split(b"\0", 1)
        msg: dict[str, Any] = json.loads(raw)
        return msg

    def call(
        self, method: str, params: dict[str, Any] | None = None, *, session: bool = True, timeout: float = 60
    ) -> dict[str, Any]:
        self._id += 1
        msg: dict[str, Any] = {"id": self._id, "method": method, "params": params or {}}
        if session and self.session:
            msg["sessionId"] = self.session
        os.write(self._to_child, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise BrowserError(f"{method}: {reply['error']}")
                result: dict[str, Any] = reply.get("result", {})
                return result
            if "method" in reply:
                self.events.append(reply)

    def eval(self, expression: str, *, timeout: float = 60) -> Any:
        """The value of a JavaScript expression (promises awaited); a thrown error raises."""
        out = self.call(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
            timeout=timeout,
        )
        if "exceptionDetails" in out:
            raise BrowserError(f"JavaScript error: {out['exceptionDetails']}")
        return out.get("result", {}).get("value")

    def wait_for(self, expression: str, *, timeout: float = 30) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = self.eval(expression)
            if value:
                return value
            time.sleep(0.02)
        raise BrowserError(f"timed out waiting for {expression}")

    def open(self, url: str, ready: str = "document.body && document.body.dataset.ready === '1'") -> float:
        """Navigate and wait until `ready` is true; returns the wall seconds it took."""
        start = time.perf_counter()
        self.call("Page.navigate", {"url": url})
        self.wait_for(ready)
        return time.perf_counter() - start

    def key(self, key: str) -> None:
        """Type one printable key (or "Escape") at whatever has focus."""
        text = key if len(key) == 1 else ""
        for kind in ("keyDown", "keyUp"):
            self.call(
                "Input.dispatchKeyEvent",
                {"type": kind, "key": key, "text": text if kind == "keyDown" else ""},
            )

    def screenshot(self, path: Path | str, *, full_page: bool = False) -> Path:
        params: dict[str, Any] = {"format": "png"}
        if full_page:
            params["captureBeyondViewport"] = True
        data = self.call("Page.captureScreenshot", params)["data"]
        return atomic_write(path, base64.b64decode(data))
