"""Loading benchmark files from a local data root, safely and lazily.

Every check raises `DataError` naming the file and the record, before any generation
starts, so a bad download never costs a half-finished run. Validation decodes every image in
full (strictly, on every core, nothing kept), so a truncated file or a decompression bomb stops
the run here and not half-way through generation; the pixels the model sees are decoded again
when it asks for them, so memory does not grow with the split. A file that passed once is not
decoded again while its path, size, mtime and content hash stay the same (mis_tasks/validated.py).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import stat
import threading
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal, TypeVar

import PIL
from PIL import Image, ImageFile, UnidentifiedImageError

from mis_tasks import validated


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


def _decode(path: str | Path) -> Image.Image:
    """Open and fully decode one image as RGB, strictly (`_strict`); raises PIL's errors (callers
    name the record).

    lmms-eval sets PIL's global LOAD_TRUNCATED_IMAGES, which pads a cut file with grey: the
    model would then be judged on a picture it never saw. Decoding here is strict, and an image
    over PIL's pixel limit (`Image.MAX_IMAGE_PIXELS`, a decompression-bomb guard) is refused
    instead of being decoded with a warning.
    """
    with _strict(), Image.open(path) as im:
        im.load()
        return im.convert("RGB")


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


# Validation work done in this process (tests count decodes with it, not time).
VALIDATION_STATS = {"decoded": 0, "cached": 0, "unreadable": 0}
RULES_VERSION = "1"  # bump when what "validated" means changes: every cached file is decoded again
Pool = Literal["thread", "process"]


def validation_rules() -> str:
    """What a cached success was decided under: a lower pixel limit or another Pillow re-checks."""
    return f"v{RULES_VERSION};pillow={PIL.__version__};max_pixels={Image.MAX_IMAGE_PIXELS}"


@contextlib.contextmanager
def _strict() -> Iterator[None]:
    """Strict decoding for this process while inside (and for threads it starts meanwhile)."""
    with _STRICT, warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        saved, ImageFile.LOAD_TRUNCATED_IMAGES = ImageFile.LOAD_TRUNCATED_IMAGES, False
        try:
            yield
        finally:
            ImageFile.LOAD_TRUNCATED_IMAGES = saved


def _strict_process(max_pixels: int | None) -> None:
    """Initializer of a validation worker process: strict for its whole life."""
    Image.MAX_IMAGE_PIXELS = max_pixels
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    warnings.simplefilter("error", Image.DecompressionBombWarning)


def _check_file(path: str, known: str | None, hashed: bool) -> tuple[str | None, bool, str | None]:
    """(sha256, decoded, error) of one file. Skips the decode only when the bytes read now hash to
    `known`, the sha256 of a file that passed before; decodes exactly the bytes it hashed."""
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        return None, False, str(e) or type(e).__name__
    sha = hashlib.sha256(data).hexdigest() if hashed else None
    if known is not None and sha == known:
        return sha, False, None
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()  # every pixel decoded, then dropped
    except _BAD_IMAGE as e:
        return sha, True, _why(e)
    return sha, True, None


def validate_images(
    items: Iterable[tuple[Path, str]],
    *,
    cache: bool | None = None,
    workers: int | None = None,
    pool: Pool = "thread",
) -> None:
    """Every image exists and decodes completely; raises DataError for the first bad one in order.

    `items` are (path, record name). Files decode in parallel (`workers`, default every core;
    Pillow decodes with the GIL released); a file already validated with the same path, size,
    mtime, content hash and rules is not decoded again (`cache`: default on unless
    $MIS_EVAL_IMAGE_CACHE=off).
    """
    items = list(items)
    errors: dict[str, str | None] = {}  # absolute path -> why it failed (None: not found)
    todo: dict[str, tuple[int, int]] = {}  # absolute path -> (size, mtime_ns) before reading
    for path, _ in items:
        key = os.path.abspath(path)
        if key in todo or key in errors:
            continue
        try:
            st = os.stat(key)
        except OSError:
            st = None
        if st is None or not stat.S_ISREG(st.st_mode):
            errors[key] = None
        else:
            todo[key] = (st.st_size, st.st_mtime_ns)
    cache_path = validated.default_path() if cache is None or cache else None
    store = validated.ValidatedFiles(cache_path, validation_rules()) if cache_path else None
    keys = list(todo)
    try:
        with _checker(max(1, min(workers or os.cpu_count() or 1, len(keys))), pool) as check:
            # a chunk at a time: memory holds one chunk's futures and results, and an interrupted
            # validation keeps the chunks it finished in the cache
            for start in range(0, len(keys), CHUNK):
                chunk = keys[start : start + CHUNK]
                stamps = store.stamps(chunk) if store is not None else {}
                args = [(k, _known(stamps.get(k), todo[k]), store is not None) for k in chunk]
                passed: list[tuple[str, validated.Stamp]] = []
                for key, (sha, decoded, why) in zip(chunk, check(args), strict=True):
                    outcome = "decoded" if decoded else "unreadable" if why is not None else "cached"
                    VALIDATION_STATS[outcome] += 1
                    if why is not None:
                        errors[key] = why
                    elif decoded and sha is not None:
                        passed.append((key, (*todo[key], sha)))
                if store is not None:
                    store.add(passed)
    finally:
        if store is not None:
            store.close()
    for path, where in items:
        key = os.path.abspath(path)
        if key in errors:
            why = errors[key]
            if why is None:
                raise DataError(f"{where}: image {path} not found")
            raise DataError(f"{where}: image {path} is not a readable image ({why})")


CHUNK = 256  # files per batch of work handed to the pool
Args = tuple[str, str | None, bool]  # path, sha256 it passed with before (or None), whether to hash
Result = tuple[str | None, bool, str | None]  # sha256, decoded, why it failed


def _known(stamp: validated.Stamp | None, now: tuple[int, int]) -> str | None:
    """The sha256 a file passed with, if its size and mtime are still those it had then."""
    return stamp[2] if stamp is not None and stamp[:2] == now else None


@contextlib.contextmanager
def _checker(workers: int, pool: Pool) -> Iterator[Callable[[Sequence[Args]], list[Result]]]:
    """A function checking a batch of files (results in order), on `workers` threads or processes."""
    if workers == 1:
        with _strict():
            yield lambda args: [_check_file(*a) for a in args]
        return
    executor: Executor
    if pool == "process":
        executor = ProcessPoolExecutor(
            workers, initializer=_strict_process, initargs=(Image.MAX_IMAGE_PIXELS,)
        )
        with executor:
            yield lambda args: list(executor.map(_check_file, *zip(*args, strict=True), chunksize=16))
        return
    with _strict(), ThreadPoolExecutor(workers, thread_name_prefix="validate") as executor:
        yield lambda args: list(executor.map(_check_file, *zip(*args, strict=True)))


def check_image(path: Path, where: str) -> None:
    """The file exists and decodes completely (pixels included); the decoded copy is dropped."""
    validate_images([(path, where)])


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
