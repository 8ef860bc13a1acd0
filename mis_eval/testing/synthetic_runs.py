"""Synthetic results folders (our run records + lmms-eval result JSONs) for tests and benchmarks.

The files have exactly the shape the real writers produce (`records.write_run`, lmms-eval's
EvaluationTracker), with made-up numbers drawn from a seeded generator.
"""

from __future__ import annotations

import json
import random
from copy import deepcopy
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from mis_eval.core.record import Counts, DataInfo, JudgeRecord, Metric, ModelInfo, RunRecord, TaskInfo
from mis_eval.records import write_run

KEYWORD_JUDGE = JudgeRecord(
    id="keyword",
    provider="local",
    model=None,
    approximation="refusal keywords, not the paper's GPT-4o judge",
)
GPT4O_JUDGE = JudgeRecord(
    id="gpt4o",
    provider="openai",
    model="gpt-4o-2024-08-06",
    settings={"temperature": 0.0, "max_tokens": 128, "concurrency": 16},
    prompt_sha256={"mis": "9509152f939e4a2f" + "0" * 48},
)
# lmms-eval task -> (headline "metric,filter", dataset path, split, scale of the stored value)
CAPABILITY = {
    "mmstar": ("average,none", "Lin-Chen/MMStar", "val", 1.0),
    "mmmu_val": ("mmmu_acc,none", "lmms-lab-encoder/MMMU", "validation", 1.0),
    "muirbench": ("muirbench_score_overall,flexible-extract", "MUIRBENCH/MUIRBENCH", "test", 1.0),
    "qbench_dev": ("qbench_acc,none", "q-future/Q-Bench-HF", "dev", 1.0),
    "mmt_val": ("accuracy,none", "lmms-lab-encoder/MMT-Benchmark", "val", 100.0),
}
SAFETY = ("mis_easy", "mis_hard", "mis_real")


def metric(rng: random.Random, value: float, n: int) -> Metric:
    half = 100 * 1.96 * ((value / 100) * (1 - value / 100) / n) ** 0.5
    return Metric(round(value, 4), round(max(0.0, value - half), 4), round(min(100.0, value + half), 4), n, 0)


def mis_record(
    model: str,
    task: str,
    rng: random.Random,
    when: datetime,
    judge: JudgeRecord | None = None,
    n: int = 100,
) -> RunRecord:
    cuts = sorted(rng.uniform(0, 100) for _ in range(3))
    parts = [cuts[0], cuts[1] - cuts[0], cuts[2] - cuts[1], 100 - cuts[2]]
    metrics = {k: metric(rng, v, n) for k, v in zip(("ASR", "RSR", "RR", "HR"), parts, strict=True)}
    stamp = when.isoformat(timespec="seconds")
    return RunRecord(
        model=ModelInfo(model, adapter="mis_demo", args=f"pretrained={model}"),
        task=TaskInfo(
            name=task,
            benchmark="mis",
            version="1",
            data=DataInfo(fingerprint=f"fp-{task}", n=n, source="synthetic"),
            extra={"split": task.split("_")[-1]},
        ),
        judge=deepcopy(judge or KEYWORD_JUDGE),
        metrics=metrics,
        counts=Counts(samples=n, ok=n),
        started_at=stamp,
        finished_at=stamp,
    )


def lmms_results(
    model: str, tasks: dict[str, float], when: datetime, limit: int | None = None
) -> dict[str, Any]:
    """An lmms-eval `<date>_results.json` body; `tasks` maps task -> accuracy in percent."""
    results, configs, n_samples = {}, {}, {}
    for task, acc in tasks.items():
        key, path, split, scale = CAPABILITY[task]
        name, _, flt = key.partition(",")
        results[task] = {"alias": task, key: acc / 100 * scale, f"{name}_stderr,{flt}": "N/A"}
        configs[task] = {
            "task": task,
            "dataset_path": path,
            "test_split": split,
            "output_type": "generate_until",
            "metadata": [{"version": 0.0}],
        }
        n_samples[task] = {"original": 1000, "effective": min(limit or 1000, 1000)}
    return {
        "results": results,
        "group_subtasks": {t: [] for t in tasks},
        "configs": configs,
        "versions": {t: 0.0 if t in ("mmmu_val", "mmt_val") else "Yaml" for t in tasks},
        "n-shot": {t: 0 for t in tasks},
        "higher_is_better": {t: {CAPABILITY[t][0].split(",")[0]: True} for t in tasks},
        "n-samples": n_samples,
        "config": {
            "model": "hf_model",
            "model_args": f"pretrained={model},dtype=float16",
            "batch_size": "1",
            "limit": limit,
        },
        "git_hash": None,
        "lmms_eval_version": "0.7.3",
        "date": (when + timedelta(hours=8)).strftime("%Y%m%d_%H%M%S"),
        "task_hashes": {},
        "model_source": "hf_model",
        "model_name": model,
        "model_name_sanitized": model.replace("/", "__"),
    }


def write_lmms_results(results_dir: Path | str, body: dict[str, Any]) -> Path:
    folder = Path(results_dir) / body["model_name_sanitized"]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{body['date'].replace(':', '-')}_results.json"
    path.write_text(json.dumps(body, indent=2), encoding="utf-8")
    return path


def make_results(
    results_dir: Path | str, n_models: int = 3, n_tasks: int = 8, seed: int = 0, start: datetime | None = None
) -> list[Path]:
    """n_models x n_tasks runs: MIS splits first (judged records), then capability tasks (lmms-eval)."""
    rng = random.Random(seed)
    start = start or datetime(2025, 6, 1, tzinfo=UTC)
    tasks = list(SAFETY) + list(CAPABILITY)
    extra = [f"extra_task_{i}" for i in range(max(0, n_tasks - len(tasks)))]
    chosen = (tasks + extra)[:n_tasks]
    paths = []
    for m in range(n_models):
        model = f"org/tiny-model-{m:02d}"
        for j, task in enumerate(chosen):
            when = start + timedelta(minutes=m * 60 + j)
            if task in CAPABILITY:
                paths.append(
                    write_lmms_results(results_dir, lmms_results(model, {task: rng.uniform(20, 80)}, when))
                )
            elif task in SAFETY:
                paths.append(write_run(mis_record(model, task, rng, when), [], results_dir))
            else:
                rec = mis_record(model, task, rng, when)
                rec.task.benchmark = "extra"
                paths.append(write_run(rec, [], results_dir))
    return paths
