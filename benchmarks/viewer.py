"""How fast the sample viewer opens and filters a full-size run, measured in headless Chromium.

A 2,285-sample MIS-format run (the size of the MIS test set) judged by two judges plus their
panel is written, the viewer is built, and Chromium (driven over the DevTools protocol)
opens it from file:// and applies filters. Printed, all from this one run:

- build: `mis-eval view` wall time (reading records, thumbnails, rendering the page);
- open: from Page.navigate until the page's script reports ready (the browser's wall time),
  and the page's own performance.now() at ready (navigation start -> first cards rendered);
- each filter: from the change to the re-rendered first page of cards, laid out (forced
  layout inside the same evaluation), as measured by the driver around the call;
- total open + all filters, against the 2 s target.

    python benchmarks/viewer.py [--n 2285]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from mis_eval.testing.synthetic_viewer import synthetic_run
from mis_eval.viewer import build_viewer
from mis_eval.viewer.browser import Chromium, find_chromium

# each step sets the whole filter state, then re-filters once (as one user action does)
STATE = (
    "{{const g=(id)=>document.getElementById(id); g('f-unsafe').checked={unsafe}; "
    "g('f-disagree').checked={disagree}; g('f-category').value='{category}'; g('f-q').value='{q}'; "
    "window.misViewer.apply()}}"
)
OFF = {"unsafe": "false", "disagree": "false", "category": "", "q": ""}
FILTERS = {
    "unsafe": STATE.format(**OFF | {"unsafe": "true"}),
    "judges disagree": STATE.format(**OFF | {"disagree": "true"}),
    "category": STATE.format(**OFF | {"category": "Violent"}),
    "search 'step'": STATE.format(**OFF | {"q": "step"}),
    "clear": STATE.format(**OFF),
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2285)
    args = ap.parse_args()
    if find_chromium() is None:
        print("headless Chromium not found (Debian: apt-get install chromium)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        synthetic_run(
            root / "results", n=args.n, judges=("j1", "j2"), panel=True, variants=("first", "second")
        )
        t = time.perf_counter()
        viewer = build_viewer([root / "results"], root / "site", progress=False)
        build_s = time.perf_counter() - t
        size_mb = viewer.html.stat().st_size / 1e6
        print(f"samples: {viewer.n_samples} (3 run records: 2 judges + panel); page {size_mb:.1f} MB")
        print(f"build (mis-eval view):            {build_s:6.2f} s")
        with Chromium() as b:
            b.open("about:blank", ready="true")
            open_s = b.open(viewer.html.resolve().as_uri())
            ready_ms = float(b.eval("document.body.dataset.readyMs"))
            print(f"open (navigate -> ready, wall):   {open_s * 1000:7.0f} ms")
            print(f"  page's performance.now() ready: {ready_ms:7.0f} ms")
            total = open_s
            for name, js in FILTERS.items():
                t = time.perf_counter()
                shown = b.eval(f"{js}; document.body.offsetHeight; document.body.dataset.shown")
                dt = time.perf_counter() - t
                total += dt
                print(f"filter {name + ':':25} {dt * 1000:7.0f} ms  ({shown} shown)")
        verdict = "under" if total < 2.0 else "OVER"
        label = f"open + {len(FILTERS)} filters:"
        print(f"{label:33} {total * 1000:7.0f} ms  ({verdict} the 2 s target)")
    return 0 if total < 2.0 else 1


if __name__ == "__main__":
    sys.exit(main())
