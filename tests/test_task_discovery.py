"""`lmms-eval --tasks mis_hard` as typed: the installed .pth hook indexes our tasks everywhere.

Each check runs the real lmms-eval CLI in a subprocess of this environment, with no
--include_path; lmms-eval exits 0 on failure, so results are read from the files it writes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from mis_eval.commands.demo import demo_data_root, mir_demo_root
from mis_eval.commands.run import lmms_eval_command
from mis_tasks import discovery

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _lmms(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, cwd=cwd, env={**os.environ, **env}, capture_output=True, text=True, timeout=600, check=False
    )


def test_the_hook_is_active_in_this_installed_environment() -> None:
    assert discovery.active(), "mis_eval_tasks.pth did not run: is mis-eval installed in this venv?"
    from lmms_eval.tasks import TaskManager

    names = set(TaskManager("ERROR").all_tasks)  # no include_path at all
    assert {"mis", "mis_easy", "mis_hard", "mis_real", "mm_safetybench", "siuo", "vlguard"} <= names
    assert {"mir_safetybench", "mir_analogy", "mir_temporal_jump", "mir_attribution"} <= names


def test_our_folder_is_added_once_next_to_a_users_include_path(tmp_path: Path) -> None:
    assert discovery.with_our_tasks(None) == [discovery.TASKS_DIR]
    assert discovery.with_our_tasks(str(tmp_path)) == [str(tmp_path), discovery.TASKS_DIR]
    again = discovery.with_our_tasks([discovery.TASKS_DIR + "/", str(tmp_path)])
    assert again == [discovery.TASKS_DIR + "/", str(tmp_path)]


def test_run_passes_a_users_include_path_through_untouched(tmp_path: Path) -> None:
    cmd, _ = lmms_eval_command(["--model", "m", "--tasks", "mine", "--include_path", str(tmp_path)])
    i = cmd.index("--include_path")
    assert cmd[i + 1] == str(tmp_path) and cmd.count("--include_path") == 1


def test_run_refuses_predict_only_before_generating() -> None:
    with pytest.raises(ValueError, match="--predict_only"):
        lmms_eval_command(["--model", "m", "--tasks", "mis_hard", "--predict_only"])


@pytest.mark.slow
def test_lmms_eval_task_listings_show_our_tasks(tmp_path: Path) -> None:
    sub = _lmms([str(BIN / "lmms-eval"), "tasks", "list"], tmp_path)
    assert "mis_hard" in sub.stdout and "siuo_gen" in sub.stdout, sub.stderr[-2000:]
    flat = _lmms([sys.executable, "-m", "lmms_eval", "--tasks", "list"], tmp_path)
    assert "mis_hard" in flat.stdout + flat.stderr, flat.stderr[-2000:]


@pytest.mark.slow
def test_lmms_eval_runs_mis_hard_as_typed(tmp_path: Path) -> None:
    """The README's promise: no --include_path, no mis-eval wrapper; keyword fallback is labelled."""
    proc = _lmms(
        [str(BIN / "lmms-eval"), "--model", "mis_demo", "--tasks", "mis_hard", "--limit", "4"]
        + ["--output_path", "out", "--log_samples"],
        tmp_path,
        MIS_DATA_ROOT=str(demo_data_root()),
    )
    results = list((tmp_path / "out").rglob("*_results.json"))
    assert results, proc.stdout[-2000:] + proc.stderr[-3000:]
    data = json.loads(results[0].read_text())
    assert "ASR,none" in data["results"]["mis_hard"] and data["config"]["limit"] == 4
    assert list((tmp_path / "out").rglob("*_samples_mis_hard.jsonl"))
    assert "ASR" in proc.stdout
    assert "approximation of the paper's GPT-4o judge" in proc.stdout  # after the table


@pytest.mark.slow
def test_lmms_eval_runs_mir_safetybench_as_typed(tmp_path: Path) -> None:
    """The group's nine relation tasks from the release layout, judged in aggregation; the keyword
    fallback is named as an approximation of MIR's judge, the HarmBench classifier."""
    proc = _lmms(
        [str(BIN / "lmms-eval"), "--model", "mis_demo", "--tasks", "mir_safetybench"]
        + ["--output_path", "out", "--log_samples"],
        tmp_path,
        MIR_DATA_ROOT=str(mir_demo_root()),
    )
    results = list((tmp_path / "out").rglob("*_results.json"))
    assert results, proc.stdout[-2000:] + proc.stderr[-3000:]
    data = json.loads(results[0].read_text())
    relations = {t for t in data["results"] if t.startswith("mir_") and t != "mir_safetybench"}
    assert len(relations) == 9 and all("ASR,none" in data["results"][t] for t in relations)
    assert "ASR,none" in data["results"]["mir_safetybench"]  # the group line
    assert len(list((tmp_path / "out").rglob("*_samples_mir_*.jsonl"))) == 9
    assert data["configs"]["mir_analogy"]["generation_kwargs"]["repetition_penalty"] == 1.05
    assert "approximation of the paper's harmbench classifier" in proc.stdout


@pytest.mark.slow
def test_the_wheel_installs_the_hook(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp_path),
            ".",
        ],
        cwd=REPO,
        check=True,
        capture_output=True,
        timeout=600,
    )
    (wheel,) = tmp_path.glob("mis_eval-*.whl")
    with zipfile.ZipFile(wheel) as z:
        assert "mis_eval_tasks.pth" in z.namelist()  # the wheel's root = site-packages
        assert z.read("mis_eval_tasks.pth").decode().startswith("import mis_tasks.discovery")
        assert "mis_tasks/mis/mis_hard.yaml" in z.namelist()
        names = z.namelist()  # the MIR tasks, its judge prompts and the bundled synthetic sample
        assert (
            "mis_tasks/mir_safetybench/mir_analogy.yaml" in names and "judges/harmbench_prompt.txt" in names
        )
        assert "mis_tasks/mir_safetybench/judge_prompt.txt" in names
        assert "mis_eval/demo_data/mir_safetybench/Privacy/Analogy_final.json" in names
        assert "mis_eval/demo_data/mir_safetybench/Privacy/images/Analogy/Analogy_0_0.png" in names
