"""Loading benchmark files from a local data root, safely and lazily.

Every check raises `DataError` naming the file and the record, before any generation
starts, so a bad download never costs a half-finished run. Validation decodes every image in
full (strictly, one at a time, nothing kept), so a truncated file or a decompression bomb stops
the run here and not half-way through generation; the pixels the model sees are decoded again
when it asks for them, so memory does not grow with the split.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from PIL import Image, ImageFile, UnidentifiedImageError


class DataError(ValueError):
    """A benchmark file or record is unusable; the message names both."""


# Records loaded in this process, by task, so aggregation can judge with each record's full
# context while lmms-eval logs only a small item per sample. It lives in a normally imported
# module because lmms-eval executes a task's utils.py afresh for every `!function` it resolves.
_LOADED: dict[str, dict[str, dict[str, Any]]] = {}


def remember(task: str, records: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    _LOADED[task] = {r["id"]: r for r in records}
    return _LOADED[task]


def loaded(task: str) -> dict[str, dict[str, Any]]:
    if task not in _LOADED:
        raise DataError(f"{task}: records were not loaded in this process; cannot judge")
    return _LOADED[task]


T = TypeVar("T")
TaskDocs = Callable[..., dict[str, dict[str, Any]]]  # (task, root=None, dataset_kwargs=None) -> {id: record}


def task_loader(
    benchmark: str,
    tasks: Mapping[str, T],
    env_var: str,
    load: Callable[[Path | None, T, str], Iterable[dict[str, Any]]],
) -> TaskDocs:
    """A benchmark's `load_task_docs`: check the task, find the data root, `load(root, tasks[task], task)`
    (validated records), remembered for the judge step and returned by id."""

    def load_task_docs(
        task: str, root: str | Path | None = None, dataset_kwargs: Mapping[str, Any] | None = None
    ) -> dict[str, dict[str, Any]]:
        if task not in tasks:
            raise DataError(f"unknown {benchmark} task {task!r}; expected one of {', '.join(tasks)}")
        return remember(task, load(data_root(env_var, dataset_kwargs, root), tasks[task], task))

    load_task_docs.__doc__ = f"Records of one {benchmark} task by id, from `root`, data_root: or {env_var}."
    return load_task_docs


def data_root(
    env_var: str, dataset_kwargs: Mapping[str, Any] | None = None, root: str | Path | None = None
) -> Path | None:
    """The local data root: `root` if given (CLI), else the task's `data_root:`, else the env var."""
    value = root or (dataset_kwargs or {}).get("data_root") or os.environ.get(env_var)
    if not value:
        return None
    root = Path(os.path.expanduser(os.path.expandvars(str(value)))).resolve()
    if not root.is_dir():
        raise DataError(f"data root {root} (from {env_var} or data_root) is not a directory")
    return root


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: malformed JSON ({e})") from None


def check_fields(record: Any, fields: Mapping[str, type | tuple[type, ...]], where: str) -> None:
    if not isinstance(record, dict):
        raise DataError(f"{where}: expected a JSON object, got {type(record).__name__}")
    for name, kind in fields.items():
        if name not in record:
            raise DataError(f"{where}: missing field {name!r}")
        if not isinstance(record[name], kind):
            want = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
            raise DataError(f"{where}: field {name!r} should be {want}, got {type(record[name]).__name__}")


def resolve_inside(root: Path, relative: str, where: str) -> Path:
    """Join a record's relative path onto the data root, refusing anything that escapes it."""
    if not relative or os.path.isabs(relative):
        raise DataError(f"{where}: image path {relative!r} must be relative to the data root {root}")
    path = (root / relative).resolve()
    if not path.is_relative_to(root):
        raise DataError(f"{where}: image path {relative!r} escapes the data root {root}")
    return path


def require_records(records: Sequence[Any], where: str) -> None:
    """An empty question list is bad data, not an empty run (lmms-eval would fail on index 0)."""
    if not records:
        raise DataError(f"{where}: no records (an empty question list)")


_STRICT = threading.Lock()


def _decode(path: str | Path, *, rgb: bool = True) -> Image.Image:
    """Open and fully decode one image, strictly; raises PIL's errors (callers name the record).

    lmms-eval sets PIL's global LOAD_TRUNCATED_IMAGES, which pads a cut file with grey: the
    model would then be judged on a picture it never saw. Decoding here is strict, and an image
    over PIL's pixel limit (`Image.MAX_IMAGE_PIXELS`, a decompression-bomb guard) is refused
    instead of being decoded with a warning.
    """
    with _STRICT, warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        saved, ImageFile.LOAD_TRUNCATED_IMAGES = ImageFile.LOAD_TRUNCATED_IMAGES, False
        try:
            with Image.open(path) as im:
                im.load()
                return im.convert("RGB") if rgb else im
        finally:
            ImageFile.LOAD_TRUNCATED_IMAGES = saved


_BAD_IMAGE = (
    UnidentifiedImageError,
    Image.DecompressionBombError,
    Image.DecompressionBombWarning,
    OSError,
    SyntaxError,
    ValueError,  # e.g. a PNG chunk that lies about its length
)


def _why(e: BaseException) -> str:
    if isinstance(e, Image.DecompressionBombError | Image.DecompressionBombWarning):
        return f"too many pixels, a possible decompression bomb: {e}"
    return str(e) or type(e).__name__


def check_image(path: Path, where: str) -> None:
    """The file exists and decodes completely (pixels included); the decoded copy is dropped."""
    if not path.is_file():
        raise DataError(f"{where}: image {path} not found")
    try:
        _decode(path, rgb=False)  # pixels decoded, then dropped with the closed file
    except _BAD_IMAGE as e:
        raise DataError(f"{where}: image {path} is not a readable image ({_why(e)})") from None


def open_image(path: str | Path, where: str) -> Image.Image:
    """Decode one image as RGB; corrupt or truncated pixel data raises DataError naming the record."""
    try:
        return _decode(path)
    except (FileNotFoundError, *_BAD_IMAGE) as e:
        raise DataError(f"{where}: cannot load image {path} ({_why(e)})") from None


def fingerprint(files: Iterable[Path], records: Sequence[Mapping[str, Any]]) -> str:
    """Content hash of the question files and record list, so results name their data version."""
    h = hashlib.sha256()
    for f in sorted(files):
        h.update(f.name.encode())
        h.update(f.read_bytes())
    h.update(json.dumps(list(records), sort_keys=True, default=str).encode())
    return h.hexdigest()[:16]


def stamp_fingerprint(
    records: list[dict[str, Any]],
    files: Iterable[Path],
    content: Callable[[dict[str, Any]], Mapping[str, Any]],
) -> list[dict[str, Any]]:
    """Set every record's `data_fingerprint` from the source files and each record's `content`.

    `content` leaves out what depends on where the data lives (absolute image paths), so the
    same release gives the same fingerprint on every machine.
    """
    fp = fingerprint(files, [content(r) for r in records])
    for r in records:
        r["data_fingerprint"] = fp
    return records
