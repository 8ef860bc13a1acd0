"""Run records -> the data the viewer page shows, and the page itself.

Records of the same model x task made from the same responses (one per judge, plus a panel's
majority record) are merged into one *run*, so each sample shows every judge's verdict side
by side. Images are downscaled copies under `img/` next to the page (a thumbnail and a
bounded "full" size), so the folder can be zipped, mailed and opened from file://.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
from PIL import Image
from tqdm import tqdm

from mis_eval.core.files import OutputError, UnreadableFile, atomic_write
from mis_eval.core.record import RunRecord, utc_now
from mis_eval.leaderboard.render import csp_script_hash
from mis_eval.records import find_runs, read_run_samples, response_sha256, sample_id

HERE = Path(__file__).parent
THUMB_PX, FULL_PX = 200, 1024  # longest side of the thumbnail and of the enlarged image
VARIANT_KEYS = ("variant", "attribution", "attribution_variant")  # attribution variants of MIS tasks
IMAGE_KEYS = ("image_paths", "images", "image_path", "image")  # where a doc keeps its image paths


def sample_anchor(model: str, task: str, sid: str, response: str | None) -> str:
    """The page anchor (`#s=<anchor>`) of one answer: stable across rebuilds, distinct per response."""
    text = json.dumps([model, task, sid, response_sha256(response)])
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def embed_json(obj: Any) -> str:
    """JSON safe inside <script type="application/json">: no `<`, `>`, `&` (so no `</script>`)."""
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False, default=str)
    for ch, esc in (
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("&", "\\u0026"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        text = text.replace(ch, esc)
    return text


def doc_variant(doc: Mapping[str, Any]) -> str | None:
    for k in VARIANT_KEYS:
        if doc.get(k):
            return str(doc[k])
    return None


def doc_images(doc: Mapping[str, Any], data_root: Path | None) -> list[Path]:
    """Image files a doc refers to (absolute, or relative to the data root)."""
    for k in IMAGE_KEYS:
        v = doc.get(k)
        paths = [v] if isinstance(v, str) else v if isinstance(v, list) else []
        found = [Path(p) for p in paths if isinstance(p, str) and p]
        if found:
            return [p if p.is_absolute() or data_root is None else data_root / p for p in found]
    numbered = sorted(k for k in doc if k.startswith("image_path") and isinstance(doc[k], str))
    return [
        Path(doc[k]) if Path(doc[k]).is_absolute() or data_root is None else data_root / doc[k]
        for k in numbered
    ]


class ImageStore:
    """Downscaled copies of source images under <out>/img/, each made once."""

    def __init__(self, out_dir: Path) -> None:
        self.dir = out_dir / "img"
        self.done: dict[Path, dict[str, str]] = {}

    def add(self, path: Path) -> dict[str, str]:
        if path in self.done:
            return self.done[path]
        try:
            st = path.stat()
            key = hashlib.sha256(f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()[:16]
            entry = {"thumb": f"img/{key}_t.jpg", "full": f"img/{key}.jpg", "name": path.name}
            if not (self.dir / f"{key}.jpg").exists():
                self.dir.mkdir(parents=True, exist_ok=True)
                with Image.open(path) as src:
                    rgb = src.convert("RGB")
                    # the thumbnail first: the full copy's name says both exist (checked above)
                    for px, name in ((THUMB_PX, entry["thumb"]), (FULL_PX, entry["full"])):
                        copy = rgb.copy()
                        copy.thumbnail((px, px))
                        buf = io.BytesIO()
                        copy.save(buf, "JPEG", quality=85)
                        atomic_write(self.dir.parent / name, buf.getvalue())
        except OutputError:
            raise  # the viewer cannot be written (disk full, read-only): not a missing image
        except (OSError, ValueError, Image.DecompressionBombError) as e:
            entry = {"missing": f"{path.name}: {type(e).__name__}"}
        self.done[path] = entry
        return entry


@dataclass
class RunGroup:
    """The records (one per judge) of one model x task x response set."""

    model: str
    task: str
    records: list[tuple[Path, RunRecord]] = field(default_factory=list)

    @property
    def judges(self) -> list[str]:
        return [r.judge.id for _, r in self.records]


def group_runs(runs: Iterable[tuple[Path, RunRecord]]) -> list[RunGroup]:
    groups: dict[tuple[str, str, str], RunGroup] = {}
    for path, rec in runs:
        model, task = rec.model.name, rec.task.name
        origin = str(rec.source.get("lmms_eval_samples") or path)
        groups.setdefault((model, task, origin), RunGroup(model, task)).records.append((path, rec))
    return list(groups.values())


def _verdicts(judge: str, per: Mapping[str, Any], panel: bool) -> list[dict[str, Any]]:
    return [
        {
            "judge": judge,
            "key": key,
            "panel": panel,
            "status": v.get("status"),
            "label": v.get("label"),
            "perception": v.get("perception"),
            "raw": v.get("raw") or "",
            "error": v.get("error"),
        }
        for key, v in sorted(per.items())
        if isinstance(v, Mapping)
    ]


def group_samples(
    group: RunGroup, run_index: int, images: ImageStore, data_root: Path | None
) -> list[dict[str, Any]]:
    """One viewer item per sample of the group, carrying every judge's verdicts."""
    per_record = []
    for path, rec in group.records:
        per_record.append((rec, {sample_id(r): r for r in read_run_samples(path, rec)}))
    first = per_record[0][1]
    items = []
    for sid, row in first.items():
        doc = row.get("doc") or {}
        verdicts: list[dict[str, Any]] = []
        for rec, rows in per_record:
            other = rows.get(sid)
            if other is not None:
                panel = rec.judge.provider == "panel"
                verdicts += _verdicts(rec.judge.id, other.get("verdicts") or {}, panel)
        members = [v for v in verdicts if not v["panel"]]
        primary = [v for v in verdicts if v["panel"]] or members[: len(row.get("verdicts") or {})]
        labels_by_key: dict[str, set[str]] = {}
        for v in members:
            if v["status"] == "ok" and v["label"] is not None:
                labels_by_key.setdefault(v["key"], set()).add(str(v["label"]))
        response = row.get("response")
        items.append(
            {
                "a": sample_anchor(group.model, group.task, sid, response),
                "run": run_index,
                "model": group.model,
                "task": group.task,
                "id": sid,
                "category": doc.get("category"),
                "sub_category": doc.get("sub_category"),
                "variant": doc_variant(doc),
                "question": doc.get("question")
                or doc.get("revised_prompt")  # MIR-SafetyBench: the prompt the model saw
                or doc.get("prompt")
                or doc.get("instruction"),
                "response": response,
                "response_sha256": response_sha256(response),
                "generation_error": row.get("generation_error"),
                "images": [images.add(p) for p in doc_images(doc, data_root)],
                "verdicts": verdicts,
                "unsafe": any(v["status"] == "ok" and v["label"] == "unsafe" for v in primary),
                "error": bool(row.get("generation_error")) or any(v["status"] != "ok" for v in verdicts),
                "disagree": any(len(s) > 1 for s in labels_by_key.values()),
            }
        )
    return items


@dataclass
class Viewer:
    html: Path
    runs: list[RunGroup]
    n_samples: int
    n_images: int
    problems: list[str] = field(default_factory=list)  # "file: why" for run records left out


def build_viewer(
    paths: Sequence[Path | str],
    out_dir: Path | str,
    *,
    data_root: Path | str | None = None,
    title: str | None = None,
    progress: bool = True,
) -> Viewer:
    """Write <out_dir>/index.html (+ img/) for every run record found under `paths`."""
    out = Path(out_dir)
    problems: list[str] = []  # files under a folder that cannot be read are left out, never fatal
    runs = find_runs(paths, problems)
    if not runs:
        raise ValueError(f"no readable run records under {', '.join(map(str, paths))}")
    store = ImageStore(out)
    root = Path(data_root) if data_root else None
    items: list[dict[str, Any]] = []
    groups: list[RunGroup] = []
    for g in tqdm(group_runs(runs), desc="viewer", unit="run", disable=not progress):
        try:
            items += group_samples(g, len(groups), store, root)
        except UnreadableFile as e:
            problems.append(f"{e} (run {g.model} · {g.task} left out)")
            continue
        groups.append(g)
    if not groups:
        raise ValueError("no readable run records: " + "; ".join(problems))
    seen: dict[str, int] = {}
    for it in items:  # the same answer in two runs (re-judged later): keep anchors unique
        n = seen[it["a"]] = seen.get(it["a"], 0) + 1
        if n > 1:
            it["a"] += f"-{n}"
    run_info = [
        {
            "model": g.model,
            "task": g.task,
            "judges": g.judges,
            "files": [str(p) for p, _ in g.records],
            "n": sum(it["run"] == i for it in items),
            "notes": sorted({n for _, r in g.records for n in r.notes}),
        }
        for i, g in enumerate(groups)
    ]
    script = (HERE / "viewer.js").read_text(encoding="utf-8")
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE), autoescape=True, undefined=jinja2.StrictUndefined
    )
    html = env.get_template("viewer.html.jinja").render(
        title=title or f"mis-eval samples: {len(items)} from {len(groups)} run(s)",
        runs=run_info,
        data=embed_json({"runs": run_info, "items": items}),
        script=script,
        script_hash=csp_script_hash(script),
        generated=utc_now(),
    )
    page = atomic_write(out / "index.html", html)
    return Viewer(page, groups, len(items), sum("thumb" in e for e in store.done.values()), problems)
