"""Cost of validating a data root with a full, strict decode of every image (mis_tasks/common.py).

Builds an MIS-format root (two PNGs per record, default 384x384 noise, like a photo in size),
then, in one run, times `load_split` with images decoded, and with only paths checked, at two
sizes, and reports time per 1,000 images and the process's resident memory after each size
(memory must not grow with the split: every decoded image is dropped before the next one).

    .venv/bin/python benchmarks/validation.py                 # 250 and 1,000 records
    .venv/bin/python benchmarks/validation.py --records 200 1000 --side 1024
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import psutil
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mis_tasks.mis.data import load_split  # noqa: E402
from tests.mis_data import record  # noqa: E402


def build(root: Path, n: int, side: int) -> None:
    # smooth content with some noise: compresses like a photo, not like pure noise
    base = Image.merge(
        "RGB", [Image.linear_gradient("L"), Image.radial_gradient("L"), Image.linear_gradient("L")]
    )
    tiles = [
        Image.blend(
            base.resize((side, side)), Image.effect_noise((side, side), 40 + 10 * k).convert("RGB"), 0.3
        )
        for k in range(4)
    ]
    recs = [record(i) for i in range(1, n + 1)]
    for i, rec in enumerate(recs):
        for k, key in enumerate(("image_path1", "image_path2")):
            path = root / rec[key]
            path.parent.mkdir(parents=True, exist_ok=True)
            tiles[(i + k) % len(tiles)].save(path, compress_level=1)
    (root / "mis_hard.json").write_text(json.dumps(recs), encoding="utf-8")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--records", type=int, nargs=2, default=(250, 1000), metavar=("SMALL", "LARGE"))
    p.add_argument("--side", type=int, default=384, help="image side in pixels")
    a = p.parse_args()
    proc = psutil.Process()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in a.records:
            root = Path(tmp) / f"r{n}"
            build(root, n, a.side)
            t = time.perf_counter()
            load_split(root, "hard", check_images=False)
            paths_only = time.perf_counter() - t
            t, cpu = time.perf_counter(), time.process_time()
            load_split(root, "hard")
            decoded, cpu = time.perf_counter() - t, time.process_time() - cpu
            rows.append((n, 2 * n, paths_only, decoded, cpu, proc.memory_info().rss / 2**20))
    print(f"{a.side}x{a.side} PNG images, full strict decode vs paths only (same run):")
    print(
        f"{'records':>8} {'images':>7} {'paths s/1k':>11} {'decode s/1k':>12} {'CPU s/1k':>9} {'RSS MiB':>8}"
    )
    for n, imgs, po, dec, cpu, rss in rows:
        print(
            f"{n:>8} {imgs:>7} {1000 * po / imgs:>11.3f} {1000 * dec / imgs:>12.3f} "
            f"{1000 * cpu / imgs:>9.3f} {rss:>8.1f}"
        )
    small, large = rows[0][5], rows[-1][5]
    print(f"RSS after {rows[-1][1]} images / after {rows[0][1]}: {large / small:.3f}")


if __name__ == "__main__":
    main()
