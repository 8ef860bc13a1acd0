"""The leaderboard page in a real browser: headless Chromium renders it, runs its script, and
must not run a script smuggled in through a model name.

Uses Debian's `chromium` (installed by .ci/run); skipped with a message when it is absent.
The page's own script records its state on <body> (data-ready, data-plot, data-sorted), so
`--dump-dom` after the scripts ran shows what happened. Set MIS_EVAL_SCREENSHOT to keep a
screenshot of the page at that path.
"""

from __future__ import annotations

import html as html_lib
import os
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest

from mis_eval.leaderboard import Options, build
from mis_eval.testing.synthetic_runs import lmms_results, make_results, write_lmms_results
from mis_eval.viewer.browser import HEADLESS_FLAGS

pytestmark = pytest.mark.browser

PAYLOAD = "<script>document.title='pwned'</script><img src=x onerror=\"document.body.dataset.pwned=1\">"
BROWSER = shutil.which("chromium") or shutil.which("chromium-browser")


def chromium(tmp: Path, url: str, *extra: str) -> str:
    if BROWSER is None:
        pytest.skip("headless Chromium not found (Debian: apt-get install chromium; .ci/run installs it)")
    cmd = [
        BROWSER,
        *HEADLESS_FLAGS,
        f"--user-data-dir={tmp / 'profile'}",
        "--virtual-time-budget=5000",
        "--window-size=1400,1000",
        *extra,
        url,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


class Dom(HTMLParser):
    """The parts of the dumped DOM the test looks at."""

    def __init__(self) -> None:
        super().__init__()
        self.body: dict[str, str | None] = {}
        self.title = ""
        self.scripts = self.imgs = 0
        self.rows: list[list[str]] = []
        self._in: str | None = None
        self._in_tbody = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "body":
            self.body = a
        elif tag == "script":
            self.scripts += 1
        elif tag == "img":
            self.imgs += 1
            assert not any(k.startswith("on") for k in a), f"injected handler: {a}"
        elif tag == "tbody":
            self._in_tbody = True
        elif tag == "tr" and self._in_tbody:
            self.rows.append([])
        elif tag == "td" and self._in_tbody:
            self.rows[-1].append(a.get("data-value") or "")
            self._in = "td"
        elif tag == "title":
            self._in = "title"

    def handle_endtag(self, tag: str) -> None:
        if tag == "tbody":
            self._in_tbody = False
        if tag in ("td", "title"):
            self._in = None

    def handle_data(self, data: str) -> None:
        if self._in == "title":
            self.title += data
        elif self._in == "td" and not self.rows[-1][-1]:
            self.rows[-1][-1] = "text:" + data if data.strip() else ""


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    tmp = tmp_path_factory.mktemp("board")
    make_results(tmp / "results", n_models=3, n_tasks=8)
    when = datetime(2025, 7, 1, tzinfo=UTC)
    body = lmms_results(PAYLOAD, {"mmstar": 61.0, "mmmu_val": 45.0}, when + timedelta(hours=1))
    write_lmms_results(tmp / "results", body)
    built = build(Options(tmp / "results", tmp / "out"))
    return tmp, built


def test_page_renders_sorts_and_does_not_run_injected_script(page: tuple[Path, object]) -> None:
    tmp, built = page
    html = built.files["html"]  # type: ignore[attr-defined]
    col = 1 + 1  # the "Capability avg" summary column (after Model, MIS ASR)
    dom_text = chromium(tmp, f"{html.resolve().as_uri()}#sort={col}&dir=desc", "--dump-dom")
    dom = Dom()
    dom.feed(dom_text)
    assert dom.body.get("data-ready") == "1", "the page's own script did not run (CSP hash?)"
    assert dom.body.get("data-plot") == "rendered", "the plot image did not decode"
    assert "data-pwned" not in dom.body and dom.title.startswith("MIS-eval leaderboard"), "payload ran"
    assert dom.scripts == 1 and dom.imgs == 1  # our script and the plot, nothing injected
    assert PAYLOAD in html_lib.unescape(dom_text)  # shown as text
    n_rows = len(built.table.rows)  # type: ignore[attr-defined]
    assert len(dom.rows) == n_rows
    assert dom.body.get("data-sorted") == f"{col}:desc"
    values = [float(r[col]) for r in dom.rows if r[col] and not r[col].startswith("text:")]
    assert len(values) == 4 and values == sorted(values, reverse=True)  # 3 synthetic models + the payload one
    assert all(not r[col] for r in dom.rows[len(values) :]), "rows without a value must sort last"


def test_screenshot(page: tuple[Path, object]) -> None:
    tmp, built = page
    shot = Path(os.environ.get("MIS_EVAL_SCREENSHOT") or tmp / "leaderboard.png")
    shot.parent.mkdir(parents=True, exist_ok=True)
    html = built.files["html"]  # type: ignore[attr-defined]
    chromium(tmp, html.resolve().as_uri(), f"--screenshot={shot}")
    assert shot.stat().st_size > 10_000
