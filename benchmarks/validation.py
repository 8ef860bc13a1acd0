"""Cost of validating a data root with a full, strict decode of every image (mis_tasks/common.py).

Builds an MIS-format root (two PNGs per record, default 384x384 noise, like a photo in size),
then, in one run and per size, times per 1,000 images:

* paths only (`load_split(check_images=False)`: schema and paths, no decode);
* one at a time, no cache (what every run paid before the validated-file cache);
* on every core, threads and processes, no cache (a new data root);
* cached: a second validation with the validated-file cache (files unchanged: hashed, not decoded);

and the process's resident memory after each size (memory must not grow with the split: every
decoded image is dropped before the next one).

    .venv/bin/python benchmarks/validation.py                 # 250 and 1,000 records
    .venv/bin/python benchmarks/validation.py --records 200 1000 --side 1024
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psutil
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mis_tasks import validated  # noqa: E402
from mis_tasks.common import VALIDATION_STATS, validate_images  # noqa: E402
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


@dataclass
class Timing:
    images: int
    paths_only: float  # seconds per 1,000 images
    sequential: float  # one at a time, no cache
    threads: float  # every core, no cache
    processes: float
    cached: float  # every core, files already validated
    cpu_sequential: float  # CPU seconds per 1,000 images, one at a time
    decoded_when_cached: int  # must be 0
    rss_mib: float


def measure(root: Path, cache_file: Path, workers: int | None = None) -> Timing:
    """Validate one built root every way, each figure per 1,000 images."""
    t = time.perf_counter()
    records = load_split(root, "hard", check_images=False)
    paths_only = time.perf_counter() - t
    items = [(Path(p), r["id"]) for r in records for p in r["image_paths"]]
    per_k = 1000 / len(items)

    def timed(**kw: object) -> tuple[float, float]:
        t, cpu = time.perf_counter(), time.process_time()
        validate_images(items, **kw)  # type: ignore[arg-type]
        return (time.perf_counter() - t) * per_k, (time.process_time() - cpu) * per_k

    sequential, cpu = timed(cache=False, workers=1)
    threads, _ = timed(cache=False, workers=workers, pool="thread")
    processes, _ = timed(cache=False, workers=workers, pool="process")
    saved = os.environ.get(validated.ENV)
    os.environ[validated.ENV] = str(cache_file)
    try:
        timed(workers=workers)  # fills the cache (a cold run, as `threads`)
        before = VALIDATION_STATS["decoded"]
        cached, _ = timed(workers=workers)
        decoded = VALIDATION_STATS["decoded"] - before
    finally:
        if saved is None:
            del os.environ[validated.ENV]
        else:
            os.environ[validated.ENV] = saved
    rss = psutil.Process().memory_info().rss / 2**20
    return Timing(len(items), paths_only * per_k, sequential, threads, processes, cached, cpu, decoded, rss)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--records", type=int, nargs=2, default=(250, 1000), metavar=("SMALL", "LARGE"))
    p.add_argument("--side", type=int, default=384, help="image side in pixels")
    p.add_argument("--workers", type=int, default=None, help="pool size (default: every core)")
    a = p.parse_args()
    rows: list[Timing] = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in a.records:
            root = Path(tmp) / f"r{n}"
            build(root, n, a.side)
            rows.append(measure(root, Path(tmp) / f"validated{n}.sqlite", a.workers))
    cores = a.workers or os.cpu_count()
    print(f"{a.side}x{a.side} PNG images, seconds per 1,000 images (same run; pools of {cores}):")
    print(
        f"{'images':>7} {'paths':>6} {'1 at a time':>11} {'CPU':>6} {'threads':>8} {'processes':>9} "
        f"{'cached':>7} {'RSS MiB':>8}"
    )
    for r in rows:
        print(
            f"{r.images:>7} {r.paths_only:>6.3f} {r.sequential:>11.3f} {r.cpu_sequential:>6.3f} "
            f"{r.threads:>8.3f} {r.processes:>9.3f} {r.cached:>7.3f} {r.rss_mib:>8.1f}"
        )
    last = rows[-1]
    print(f"decoded again when cached: {last.decoded_when_cached} of {last.images}")
    print(f"RSS after {last.images} images / after {rows[0].images}: {last.rss_mib / rows[0].rss_mib:.3f}")


if __name__ == "__main__":
    main()
