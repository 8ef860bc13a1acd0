"""MM-SafetyBench, SIUO and VLGuard end to end: lmms-eval -> judge step -> records -> leaderboard.

The issue's 'done when', run for real: `mis-eval run` (lmms-eval with the tasks, the offline
demo model) on all three groups, judged by a real local OpenAI-compatible server, then the
leaderboard rebuilt from the written records.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mis_eval.records import find_runs
from mis_eval.testing.fake_openai import FakeOpenAIServer, prompt_text
from tests.safety_bench_data import mmsb_root, siuo_root, vlguard_root

MIS_EVAL = [sys.executable, "-m", "mis_eval.cli"]
TASKS = (
    "mm_safetybench_tiny_sd",
    "mm_safetybench_tiny_sd_typo",
    "mm_safetybench_tiny_typo",
    "siuo_gen",
    "siuo_mcqa",
    "vlguard_safe_safes",
    "vlguard_safe_unsafes",
    "vlguard_unsafes",
)


def judge_reply(body: dict[str, Any]) -> str:
    """A judge that answers every rubric of the three benchmarks in its published format."""
    text = prompt_text(body)
    if "[Safety Judgement:]" in text:
        return "[Reasons:] It refuses.\n[Safety Judgement:](Judgement:) True"
    if "[Effectiveness Judgement:]" in text:
        return "[Reasons:] Partly.\n[Effectiveness Judgement:] Partially Effective"
    if '"model_identifier": "m"' in text:
        return "m"
    return "Unsafe."  # the six MM-SafetyBench templates (and VLGuard's judged ASR)


@pytest.mark.slow
def test_three_benchmarks_from_lmms_eval_to_the_leaderboard(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "MMSB_DATA_ROOT": str(mmsb_root(tmp_path / "mmsb", ("SD",))),
        "SIUO_DATA_ROOT": str(siuo_root(tmp_path / "siuo")),
        "VLGUARD_DATA_ROOT": str(vlguard_root(tmp_path / "vlguard")),
    }
    with FakeOpenAIServer(reply=judge_reply) as srv:
        judge = f"local:base_url={srv.base_url},model=fake-gpt"
        proc = subprocess.run(
            [
                *MIS_EVAL,
                "run",
                "--model",
                "mis_demo",
                "--tasks",
                "mm_safetybench_tiny,siuo,vlguard",
                "--limit",
                "3",
                "--judge",
                judge,
                "--no-progress",
            ],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert proc.returncode == 0, proc.stderr[-4000:]
        calls = srv.calls
        again = subprocess.run(
            [*MIS_EVAL, "judge", "logs", "--judge", judge, "--results-dir", "again", "--no-progress"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert again.returncode == 0, again.stderr[-4000:]
        assert calls > 0 and srv.calls == calls  # every response was judged once; re-judging hit the cache
    runs = {rec.task.name: rec for _, rec in find_runs([tmp_path / "results"])}
    assert set(runs) == set(TASKS)
    got = {t: {k: m.value for k, m in r.metrics.items()} for t, r in runs.items()}
    for t in TASKS[:3]:
        assert got[t]["ASR"] == 100 and got[t]["ASR_micro"] == 100
    assert got["siuo_gen"] == {"safe_rate": 100, "effective_rate": 100, "safe_effective_rate": 100}
    assert got["vlguard_safe_safes"]["win_rate"] == 100 and got["vlguard_safe_safes"]["win_rate_swapped"] == 0
    assert got["vlguard_unsafes"]["ASR_judge"] == 100 and got["vlguard_unsafes"]["ASR"] is not None
    assert got["siuo_mcqa"]["accuracy"] is not None
    assert runs["siuo_gen"].counts.verdicts == 18  # 3 questions x 3 answers x (safety, effectiveness)
    typo_notes = " ".join(runs["mm_safetybench_tiny_typo"].notes)
    assert "rendered from the key phrase" in typo_notes
    assert "composed from the SD image" in " ".join(runs["mm_safetybench_tiny_sd_typo"].notes)
    assert all(r.judge.model == "fake-gpt" and r.task.data.fingerprint for r in runs.values())
    assert all(r.task.data.limit == 3 for r in runs.values())  # --limit 3: recorded as partial

    board = subprocess.run(
        [
            *MIS_EVAL,
            "leaderboard",
            "--results",
            "results",
            "--out",
            "lb",
            "--no-reported",
            "--include-limited",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert board.returncode == 0, board.stderr[-3000:]
    table = (tmp_path / "lb" / "leaderboard.md").read_text()
    row = next(line for line in table.splitlines() if line.startswith("| mis\\_demo"))
    for label in ("MM-SafetyBench", "SIUO", "VLGuard"):
        assert label in table
    assert "100.00" in row
