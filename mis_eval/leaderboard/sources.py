"""Readers that turn files under results/ (and bundled published numbers) into `Entry`s.

A results folder mixes our run records (`mis-eval.run/2`; /1 still read), lmms-eval's `*_results.json`
and other files. Each JSON is read once and dispatched by its content, not its name. A
broken file never stops the build: it is listed, with the reason, in `Loaded.problems`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mis_eval.calibration import SCHEMA as CALIBRATION_SCHEMA
from mis_eval.core.files import UnreadableFile, read_json
from mis_eval.core.record import READABLE_SCHEMAS, JudgeRecord, Metric, RunRecord, TaskInfo, is_run_record
from mis_eval.leaderboard.entries import Entry, Key, parse_time, signature
from mis_eval.leaderboard.spec import Spec

REPORTED_INDEX = Path(__file__).with_name("reported.yaml")
# judge settings that do not change a verdict (throughput, plumbing) and so do not split columns
# (and anything that looks like a credential, which must never be shown even if a judge reported it)
_NEUTRAL_SETTINGS = (
    "concurrency",
    "timeout",
    "retr",
    "rate",
    "rpm",
    "tpm",
    "cache",
    "base_url",
    "progress",
    "key",
    "token",
    "secret",
    "password",
    "auth",
)
# lmms-eval's GeneralConfigTracker._get_model_name: the model name comes from these model_args
LMMS_SCORER = signature({"scorer": "lmms-eval"})
_MODEL_ARG_KEYS = (
    "peft",
    "delta",
    "pretrained",
    "model",
    "model_version",
    "model_name",
    "model_id",
    "path",
    "engine",
)


@dataclass
class Loaded:
    entries: list[Entry] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # "path: why" for files that could not be used
    ignored: list[str] = field(default_factory=list)  # JSON files that are not run results
    # run id -> (calibration file, its time, the judge-error-corrected ASR): `mis-eval calibrate` records
    corrections: dict[str, tuple[str, str, Metric]] = field(default_factory=dict)


def judge_key(judge: JudgeRecord) -> Key:
    settings = {k: v for k, v in judge.settings.items() if not any(n in k.lower() for n in _NEUTRAL_SETTINGS)}
    prompts = dict(judge.prompt_sha256)
    ident = {"id": judge.id, "provider": judge.provider, "model": judge.model}
    sig = signature({**ident, "settings": settings, "prompts": prompts})
    name = str(judge.id or "unknown judge")
    if judge.model and judge.model != name:
        name += f": {judge.model}"
    parts = [f"provider {judge.provider}"] if judge.provider else []
    parts += [f"{k}={v}" for k, v in sorted(settings.items())]
    parts += [f"{r} prompt {h[:8]}" for r, h in sorted(prompts.items())]
    if judge.approximation:
        parts.append(f"approximation: {judge.approximation}")
    return Key(sig, f"{name} #{sig[:6]}", "; ".join(parts), paper=paper_protocol(judge))


def paper_protocol(judge: JudgeRecord) -> bool:
    """The run's judge is the paper's, asked the paper's way: no approximation, not hardened.

    `delimit_untrusted` is how records before the paper-mode default said "hardened".
    """
    settings = judge.settings
    hardened = bool(settings.get("hardened") or settings.get("delimit_untrusted"))
    return not judge.approximation and not hardened and bool(judge.id)


def record_data_key(task: TaskInfo, *, incomplete: bool = False) -> Key:
    """The data version of a run record; an incomplete run's numbers get their own key (own columns,
    never averaged with complete runs of the same data)."""
    data = task.data
    ident = {
        "benchmark": task.benchmark,
        "version": task.version,
        "split": task.extra.get("split"),
        "fingerprint": data.fingerprint,
        "n": data.n,
        "limit": data.limit,
    }
    if incomplete:  # only then: complete records keep the signature they always had
        ident["incomplete"] = True
    sig = signature(ident)
    label = f"{task.benchmark or task.name} v{task.version}"
    if data.fingerprint:
        label += f" · data {str(data.fingerprint)[:8]}"
    label += f" · n={data.n}"
    if data.limit is not None:
        label += f" · --limit {data.limit}"
    if incomplete:
        label += " · INCOMPLETE"
    detail = f"source {data.source}" if data.source else ""
    family = f"{task.benchmark} v{task.version}" + (" incomplete" if incomplete else "")
    return Key(sig, label, detail, family=family)


def incomplete_reason(rec: RunRecord) -> str:
    """Why a record is marked incomplete ("" when it is complete; records before the mark are)."""
    if rec.complete or rec.completeness is None:
        return ""
    return f"incomplete run: {rec.completeness.reason or 'too many unusable verdicts'}"


def read_run_record(data: Mapping[str, Any], path: str, spec: Spec) -> list[Entry]:
    rec = RunRecord.from_dict(data)
    limit = rec.task.data.limit
    incomplete = incomplete_reason(rec)
    return [
        Entry(
            model=rec.model.name,
            task=rec.task.name,
            metrics=rec.metrics,
            judge=judge_key(rec.judge),
            data=record_data_key(rec.task, incomplete=bool(incomplete)),
            origin="mis-eval",
            finished_at=parse_time(rec.finished_at),
            source=path,
            run_id=rec.run_id,
            notes=list(rec.notes) + ([incomplete] if incomplete else []),
            limited=f"generated with lmms-eval --limit {limit}" if limit is not None else "",
            incomplete=incomplete,
        )
    ]


def lmms_model_name(config: Mapping[str, Any]) -> str:
    args = config.get("model_args") or ""
    if isinstance(args, Mapping):
        for key in _MODEL_ARG_KEYS:
            if args.get(key):
                return str(args[key])
    else:
        for key in _MODEL_ARG_KEYS:
            if f"{key}=" in str(args):
                return str(args).split(f"{key}=")[1].split(",")[0]
    return str(config.get("model") or "unknown model")


def _lmms_n(n_samples: Mapping[str, Any]) -> tuple[int, int]:
    original = int(n_samples.get("original") or 0)
    effective = float(n_samples.get("effective") or original)
    if 0 < effective < 1:  # a fractional --limit: lmms-eval stores the fraction itself
        effective = math.ceil(original * effective)
    return int(effective), original


def _lmms_metric(value: float, stderr: Any, n: int, scale: float) -> tuple[Metric, str | None]:
    v = value * scale
    if isinstance(stderr, int | float) and math.isfinite(stderr):
        half, note = 1.96 * stderr * scale, None
    elif n > 0 and 0.0 <= v <= 100.0:
        half = 196.0 * math.sqrt((v / 100) * (1 - v / 100) / n)
        note = "CI: normal approximation from the accuracy and n (lmms-eval gave no stderr)"
    else:
        return Metric(value=round(v, 4), n=n), None
    lo, hi = v - half, v + half
    if 0.0 <= v <= 100.0:  # a percentage: the interval stays within [0, 100]
        lo, hi = max(0.0, lo), min(100.0, hi)
    return Metric(value=round(v, 4), ci_low=round(lo, 4), ci_high=round(hi, 4), n=n), note


def read_lmms_results(data: Mapping[str, Any], path: str, spec: Spec) -> list[Entry]:
    config = data.get("config") or data.get("model_configs") or {}
    model = str(data.get("model_name") or lmms_model_name(config))
    tz = (config.get("resolved_cli_args") or {}).get("timezone") or "Asia/Singapore"  # lmms-eval's default
    when = parse_time(data.get("date") or Path(path).name.split("_results")[0], tz)
    entries = []
    for task, res in (data.get("results") or {}).items():
        if task not in (data.get("configs") or {}):
            continue  # a group row: its members are read one by one
        rule = spec.rule(task)
        n, original = _lmms_n((data.get("n-samples") or {}).get(task) or {})
        metrics, notes = {}, []
        for key, value in res.items():
            if (
                "_stderr" in key
                or key == "alias"
                or isinstance(value, bool)
                or not isinstance(value, int | float)
            ):
                continue
            if not math.isfinite(value):
                metrics[key] = Metric(value=None)  # lmms-eval writes NaN for "not computed"
                continue
            name, _, flt = key.partition(",")
            stderr = res.get(f"{name}_stderr,{flt}")
            metrics[key], note = _lmms_metric(float(value), stderr, n, rule.scale)
            if note and key == rule.lmms_metric:
                notes.append(note)
        cfg = data["configs"][task]
        version = (data.get("versions") or {}).get(task)
        revision = (cfg.get("dataset_kwargs") or {}).get("revision")
        ident = {
            "version": version,
            "path": cfg.get("dataset_path"),
            "name": cfg.get("dataset_name"),
            "split": cfg.get("test_split"),
            "revision": revision,
            "n": n,
            "of": original,
        }
        label = f"{cfg.get('dataset_path')}:{cfg.get('test_split')}"
        if version not in (None, "Yaml"):  # "Yaml" is lmms-eval's placeholder for an unversioned task
            label += f" v{version}"
        if original and n < original:
            label += f" · first {n} of {original}"
            notes.append(f"limited run: first {n} of {original} documents")
        judge = Key(
            LMMS_SCORER,
            "lmms-eval scorer",
            "each task's own rule-based scoring (process_results and aggregation), "
            f"lmms-eval {data.get('lmms_eval_version', '?')}",
        )
        entries.append(
            Entry(
                model=model,
                task=task,
                metrics=metrics,
                judge=judge,
                data=Key(signature(ident), label, family=f"lmms-eval {task} v{version}"),
                origin="lmms-eval",
                finished_at=when,
                source=path,
                run_id=f"{path}#{task}",
                notes=notes,
                limited=f"first {n} of {original} documents (lmms-eval --limit)"
                if original and n < original
                else "",
            )
        )
    return entries


def _read_mis_project_page(rows: Any, meta: Mapping[str, Any]) -> list[Entry]:
    judge = Key(signature(["reported", meta["judge"]]), "reported", str(meta["judge"]))
    data = Key(signature(["reported", meta["data"]]), "reported", str(meta["data"]), family="reported")
    out = []
    for row in rows:
        for split in ("easy", "hard", "real"):
            vals = row.get(f"test_{split}")
            if vals:
                metrics = {m.upper(): Metric(value=float(v)) for m, v in vals.items()}
                out.append(
                    Entry(
                        model=str(row["name"]),
                        task=f"mis_{split}",
                        metrics=metrics,
                        judge=judge,
                        data=data,
                        origin="reported",
                        finished_at=parse_time(str(meta.get("date"))),
                        source=str(meta["source"]),
                        run_id=f"reported:{meta['file']}",
                    )
                )
    return out


REPORTED_READERS: dict[str, Callable[[Any, Mapping[str, Any]], list[Entry]]] = {
    "mis_project_page": _read_mis_project_page,
}


def reported_entries(index: Path = REPORTED_INDEX) -> list[Entry]:
    out: list[Entry] = []
    for meta in yaml.safe_load(index.read_text(encoding="utf-8")) or []:
        rows = json.loads(index.with_name(meta["file"]).read_text(encoding="utf-8"))
        out += REPORTED_READERS[meta["format"]](rows, meta)
    return out


def _kind(data: Any) -> Callable[[Mapping[str, Any], str, Spec], list[Entry]] | None:
    if not isinstance(data, dict):
        return None
    if is_run_record(data):
        return read_run_record
    if isinstance(data.get("results"), dict) and isinstance(data.get("configs"), dict):
        return read_lmms_results
    return None


def _read_calibration(data: Mapping[str, Any], path: str, out: Loaded) -> None:
    """Corrected ASRs of a calibration record; the newest calibration of a run wins.

    All or nothing: a malformed entry raises before any correction of the file is used.
    """
    when = str(data.get("created_at") or "")
    found: dict[str, Metric] = {}
    for i, r in enumerate(data.get("runs") or []):
        c = r.get("corrected") or {}
        if c.get("value") is None:
            continue
        parts = {"value": c["value"], "ci_low": c.get("ci_low"), "ci_high": c.get("ci_high")}
        found[str(r.get("run_id"))] = Metric.from_dict(parts | {"n": c.get("n") or 0}, f"runs[{i}].corrected")
    for run_id, metric in found.items():
        old = out.corrections.get(run_id)
        if old is None or old[1] <= when:
            out.corrections[run_id] = (path, when, metric)


def load_results(results_dir: Path | str, spec: Spec, files: Iterable[Path] | None = None) -> Loaded:
    """Every usable entry under results_dir; files that fail are reported, never fatal."""
    root = Path(results_dir)
    out = Loaded()
    paths = sorted(files) if files is not None else sorted(root.rglob("*.json"))
    for p in paths:
        if any(part.startswith(".") for part in p.relative_to(root).parts if p.is_relative_to(root)):
            continue  # temporary files of an atomic write in progress
        if p.is_dir():
            continue  # a folder named *.json: no results file
        shown = str(p.relative_to(root)) if p.is_relative_to(root) else str(p)
        try:
            data = read_json(p)
        except UnreadableFile as e:
            out.problems.append(str(e))
            continue
        if isinstance(data, dict) and data.get("schema") == CALIBRATION_SCHEMA:
            try:
                _read_calibration(data, shown, out)
            except (KeyError, TypeError, ValueError, AttributeError, ArithmeticError) as e:
                out.problems.append(f"{p}: malformed calibration record ({type(e).__name__}: {e})")
            continue
        reader = _kind(data)
        if reader is None:
            if isinstance(data, dict) and str(data.get("schema", "")).startswith("mis-eval.run/"):
                out.problems.append(
                    f"{p}: run record schema {data['schema']!r} is not one of {READABLE_SCHEMAS}"
                )
            else:
                out.ignored.append(shown)
            continue
        try:
            entries = reader(data, shown, spec)
        except (KeyError, TypeError, ValueError, AttributeError, ArithmeticError) as e:
            out.problems.append(
                f"{p}: malformed {'run record' if reader is read_run_record else 'lmms-eval results'}"
                f" ({type(e).__name__}: {e})"
            )
            continue
        out.entries += [e for e in entries if spec.rule(e.task).accepts(e.origin)]
    return out
