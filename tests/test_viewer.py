"""`mis-eval view`: the page's data, its escaping, and the page itself in headless Chromium.

The browser tests drive Debian's `chromium` over the DevTools protocol (mis_eval/viewer/browser.py):
they load the page from file://, click filters, type keys, and read back what the page did.
They are skipped with a message when Chromium is absent. MIS_EVAL_SCREENSHOT=PATH keeps a
screenshot of the viewer.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import pytest

from mis_eval.cli import main
from mis_eval.testing.synthetic_viewer import synthetic_run
from mis_eval.viewer import build_viewer, sample_anchor
from mis_eval.viewer.browser import Chromium, find_chromium
from mis_eval.viewer.build import embed_json

PAYLOAD = (
    "</script><script>window.pwned=1;document.title='pwned'</script>"
    '<img src=x onerror="window.pwned=2;alert(1)"> \u2028 & <b>bold</b>'
)


def test_embedded_json_cannot_close_its_script_block() -> None:
    text = embed_json({"r": PAYLOAD})
    assert "<" not in text and ">" not in text and "&" not in text and "\u2028" not in text
    assert json.loads(text) == {"r": PAYLOAD}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("viewer")
    synthetic_run(
        tmp / "results",
        model="tiny-a",
        n=30,
        judges=("j1", "j2"),
        panel=True,
        payload=PAYLOAD,
        variants=("first", "second", "none", "swapped"),
    )
    synthetic_run(tmp / "results", model="tiny-b", task="mis_easy", n=10, judges=("keyword",), seed=3)
    (tmp / "results" / "lmms-eval-results.json").write_text('{"results": {}}')  # other JSON is skipped
    build_viewer([tmp / "results"], tmp / "site", progress=False)
    return tmp


def page_data(site: Path) -> dict:
    html = (site / "site" / "index.html").read_text()
    block = re.search(r'<script type="application/json" id="mis-data">(.*?)</script>', html, re.S)
    assert block is not None
    return json.loads(block.group(1))


def test_data_merges_judges_and_flags_disagreement_errors_and_variants(site: Path) -> None:
    data = page_data(site)
    items = data["items"]
    assert len(items) == 40 and len(data["runs"]) == 2
    a = [it for it in items if it["model"] == "tiny-a"]
    assert {v["judge"] for v in a[1]["verdicts"]} == {"j1", "j2", "panel(j1+j2)"}
    assert {it["variant"] for it in a} == {"first", "second", "none", "swapped"}
    for it in a:
        labels = {v["label"] for v in it["verdicts"] if not v["panel"] and v["status"] == "ok"}
        assert it["disagree"] == (len(labels) > 1)
        panel = [v for v in it["verdicts"] if v["panel"]]
        assert it["unsafe"] == any(v["label"] == "unsafe" for v in panel)
    assert any(it["disagree"] for it in a)
    failed = [it for it in items if it["generation_error"]]
    assert failed and all(it["error"] and it["response"] is None for it in failed)
    assert a[0]["a"] == sample_anchor("tiny-a", "mis_hard", "1", PAYLOAD)
    assert len({it["a"] for it in items}) == len(items)
    thumbs = [im["thumb"] for it in items for im in it["images"]]
    assert thumbs and all((site / "site" / t).is_file() for t in thumbs)
    from PIL import Image

    with Image.open(site / "site" / thumbs[0]) as im:
        assert max(im.size) <= 200


def test_html_escapes_run_text(site: Path) -> None:
    html = (site / "site" / "index.html").read_text()
    assert "window.pwned" in html  # present as data ...
    assert "<script>window.pwned" not in html and 'onerror="window' not in html  # ... never as markup
    assert html.count("<script") == 2  # the JSON block and our script


def test_view_command_and_bad_input(site: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rec = sorted((site / "results" / "tiny-b").glob("*.json"))[0]
    assert main(["view", str(rec), "--out", str(tmp_path / "one"), "--no-progress"]) == 0
    assert "10 sample(s) from 1 run(s)" in capsys.readouterr().out
    assert main(["view", str(tmp_path / "nothing-here"), "--out", str(tmp_path / "x")]) == 2
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "r.json").write_text(rec.read_text())  # a record whose samples file is missing
    assert main(["view", str(broken), "--out", str(tmp_path / "y")]) == 2
    assert "r.json" in capsys.readouterr().err


browser = pytest.mark.skipif(
    find_chromium() is None, reason="headless Chromium not found (Debian: apt-get install chromium)"
)


@browser
@pytest.mark.browser
def test_page_in_chromium_filters_navigates_labels_and_runs_no_payload(site: Path) -> None:
    url = (site / "site" / "index.html").resolve().as_uri()
    data = page_data(site)
    items = data["items"]
    with Chromium() as b:
        b.open(url)
        assert b.eval("window.pwned") is None and b.eval("document.title") != "pwned"
        assert "Page.javascriptDialogOpening" not in [e.get("method") for e in b.events]
        assert b.eval("document.body.dataset.shown") == str(len(items))
        assert PAYLOAD in b.eval("document.getElementById('list').innerText")  # shown as text
        assert b.eval("document.querySelectorAll('#list script, #list img[onerror], #list b').length") == 0

        def shown_after(js: str) -> int:
            b.eval(js)
            return int(b.eval("document.body.dataset.shown"))

        assert shown_after("document.getElementById('f-unsafe').click()") == sum(it["unsafe"] for it in items)
        assert b.eval("location.hash") == "#unsafe=1"
        assert shown_after("document.getElementById('f-unsafe').click()") == len(items)
        assert shown_after("document.getElementById('f-errors').click()") == sum(it["error"] for it in items)
        b.eval("document.getElementById('f-errors').click()")
        n_dis = sum(it["disagree"] for it in items)
        assert 0 < shown_after("document.getElementById('f-disagree').click()") == n_dis
        b.eval("document.getElementById('f-disagree').click()")
        pick = (
            "{{const s=document.getElementById('{0}'); s.value='{1}'; s.dispatchEvent(new Event('change'))}}"
        )
        assert shown_after(pick.format("f-variant", "swapped")) == sum(
            it["variant"] == "swapped" for it in items
        )
        assert shown_after(pick.format("f-variant", "")) == len(items)
        assert shown_after(pick.format("f-category", "Violent")) == sum(
            it["category"] == "Violent" for it in items
        )
        assert shown_after(pick.format("f-category", "")) == len(items)
        search = "{{const q=document.getElementById('f-q'); q.value='{0}'; window.misViewer.apply()}}"
        assert (
            shown_after(search.format("(#27)")) == sum("(#27)" in (it["question"] or "") for it in items) == 1
        )
        assert shown_after(search.format("")) == len(items)

        # keyboard: j twice = the second sample; u + 3 labels it; the export carries the label
        b.key("j")
        b.key("j")
        second = items[1]
        assert b.eval("document.body.dataset.focus") == second["a"]
        assert b.eval("location.hash") == f"#s={second['a']}"
        b.key("u")
        b.key("3")
        lines = [json.loads(x) for x in b.eval("window.misViewer.exportText()").splitlines() if x]
        assert lines == [
            {
                "schema": "mis-eval.label/1",
                "anchor": second["a"],
                "model": second["model"],
                "task": second["task"],
                "id": second["id"],
                "response_sha256": second["response_sha256"],
                "label": "unsafe",
                "perception": 3,
                "note": "",
                "labelled_at": lines[0]["labelled_at"],
            }
        ]
        # the Export button downloads the same JSONL, which `mis-eval calibrate` reads
        downloads = site / "downloads"
        b.call(
            "Browser.setDownloadBehavior",
            {"behavior": "allow", "downloadPath": str(downloads)},
            session=False,
        )
        b.eval("document.getElementById('export').click()")
        deadline = time.monotonic() + 20
        while not (downloads / "labels.jsonl").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        exported = downloads / "labels.jsonl"
        assert [json.loads(x) for x in exported.read_text().splitlines()] == lines
        out = site / "cal.json"
        assert main(["calibrate", "--labels", str(exported), str(site / "results"), "--out", str(out)]) == 0
        assert json.loads(out.read_text())["matched"] == 1
        b.key("o")  # enlarge the focused sample's first image
        assert b.eval("document.getElementById('overlay').classList.contains('open')")
        assert b.wait_for("document.querySelector('#overlay img').naturalWidth > 0")
        b.key("Escape")
        # a link to one sample opens with that sample focused, and the label survived a reload
        last = items[-1]
        b.open(url + f"#s={last['a']}")
        assert b.eval("document.body.dataset.focus") == last["a"]
        assert b.eval("Object.keys(window.misViewer.labels())") == [second["a"]]
        assert b.eval("document.querySelectorAll('#list img').length") > 0
        assert b.wait_for("Array.from(document.querySelectorAll('#list img')).some(i => i.naturalWidth > 0)")
        if os.environ.get("MIS_EVAL_SCREENSHOT"):
            b.open(url + f"#s={items[0]['a']}")
            b.screenshot(os.environ["MIS_EVAL_SCREENSHOT"])
