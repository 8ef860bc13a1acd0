"""docs/adding-a-judge.md cannot rot: its `prefix` judge, imported as the guide says, judges the bundled
demo data through the real judge step and record writer, and with the guide's `_MODULES` entry in a
copy of `judges/` it is a `mis-eval judge --judge prefix` name."""

from __future__ import annotations

import ast
import importlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from judges import registry
from judges.base import Status
from mis_eval.commands.demo import demo_data_root
from mis_eval.core.samples import Sample
from mis_eval.panel import judge_panel
from mis_eval.records import find_runs
from mis_tasks.mis.data import load_task_docs
from tests.docs_support import block_after, guide
from tests.mis_data import write_logs

ROOT = Path(__file__).resolve().parents[1]
GUIDE = guide("adding-a-judge.md")
MODULE = block_after(GUIDE, "`judges/prefix.py`", "python")
MODULES_ENTRY = block_after(GUIDE, "Add one entry", "python")
MODULES_ANCHOR = "_MODULES: dict[str, str] = {\n"
REFUSAL, COMPLIANCE = "I'm sorry, I can't help with that.", "Sure: first take the one, then..."


@pytest.fixture
def prefix_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    """The guide's module imported from a temp dir (its decorator registers "prefix"), then forgotten."""
    (tmp_path / "docs_prefix_judge.py").write_text(MODULE, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert "prefix" not in registry.list_judges()
    try:
        yield importlib.import_module("docs_prefix_judge")
    finally:
        registry._JUDGES.pop("prefix", None)
        sys.modules.pop("docs_prefix_judge", None)


def demo_samples(responses: list[str]) -> list[Sample]:
    docs = list(load_task_docs("mis_hard", root=demo_data_root()).values())
    assert len(docs) == len(responses)
    return [Sample("mis_hard", i, doc, r) for i, (doc, r) in enumerate(zip(docs, responses, strict=True))]


def test_the_guides_judge_runs_through_the_judge_step_and_record(
    prefix_module: object, tmp_path: Path
) -> None:
    judge = registry.get_judge("prefix")
    assert type(judge).__module__ == "docs_prefix_judge" and judge.name == "prefix"
    # 3 refusals, 4 compliances, 1 empty answer the judge cannot read
    responses = [REFUSAL, COMPLIANCE, "  as an AI, I won't.", COMPLIANCE, "", COMPLIANCE, REFUSAL, COMPLIANCE]
    (record,) = judge_panel(
        "mis_hard",
        demo_samples(responses),
        [judge],
        model={"name": "docs-example"},
        results_dir=tmp_path / "results",
        progress=False,
    )
    assert record.judge.id == "prefix" and record.judge.provider == "offline"
    assert record.judge.approximation and "approximat" not in json.dumps(record.judge.settings)
    assert record.counts.error == 1 and record.counts.ok == 7
    asr = record.metrics["ASR"]
    assert asr.n == 7 and asr.n_excluded == 1  # the error is neither safe nor unsafe
    assert asr.value == pytest.approx(400 / 7)
    assert record.accounting["errors"] == 1 and record.accounting["judged"] == 8
    ((found_path, found),) = find_runs([tmp_path / "results"])
    assert found_path.name.startswith("mis_hard__prefix__") and found == record


def test_the_guides_judge_keeps_its_contract(prefix_module: object) -> None:
    from mis_tasks.mis.scoring import BENCHMARK, RUBRIC

    judge = registry.get_judge("prefix")
    requests = [r for s in demo_samples([REFUSAL, COMPLIANCE] * 4) for r in BENCHMARK.requests(s)]
    broken = type(requests[0])(key="bad", rubric=RUBRIC, fields={})  # no response field: one bad item
    verdicts = judge.judge([requests[0], broken, requests[1]], progress=False)
    assert [v.status for v in verdicts] == [Status.OK, Status.ERROR, Status.OK]  # in order, no raise
    assert [v.label for v in verdicts] == ["safe", None, "unsafe"]
    assert verdicts[1].error and verdicts[1].error.startswith("bad: KeyError")
    other = registry.get_judge("prefix", prefixes="sure|no way")
    assert other.info([RUBRIC]).id.startswith("prefix:") and other.info([RUBRIC]).id != "prefix"
    assert [v.label for v in other.judge(requests[:2], progress=False)] == ["unsafe", "safe"]
    with pytest.raises(ValueError, match="unknown prefix judge option"):
        registry.get_judge("prefix", prefix="typo")


def test_the_guides_modules_entry_makes_a_cli_judge_name(tmp_path: Path) -> None:
    entry = ast.literal_eval("{" + MODULES_ENTRY + "}")
    assert entry == {"prefix": "judges.prefix"}
    registry_src = (ROOT / "judges" / "registry.py").read_text(encoding="utf-8")
    assert registry_src.count(MODULES_ANCHOR) == 1  # where the guide says the entry goes
    # a copy of `judges/` with the guide's module and entry: the repository tree stays as it is
    copy = tmp_path / "pkg"
    shutil.copytree(ROOT / "judges", copy / "judges", ignore=shutil.ignore_patterns("__pycache__"))
    (copy / "judges" / "prefix.py").write_text(MODULE, encoding="utf-8")
    (copy / "judges" / "registry.py").write_text(
        registry_src.replace(MODULES_ANCHOR, MODULES_ANCHOR + MODULES_ENTRY), encoding="utf-8"
    )
    logs = write_logs(tmp_path / "logs", [REFUSAL if i % 2 else COMPLIANCE for i in range(8)])
    cli = (
        "import sys, judges; print('judges from', judges.__file__, file=sys.stderr); "
        "from mis_eval.cli import main; sys.exit(main(sys.argv[1:]))"
    )
    args = ["judge", str(logs), "--judge", "prefix", "--data-root", str(demo_data_root()), "--no-progress"]
    proc = subprocess.run(
        [sys.executable, "-c", cli, *args, "--results-dir", str(tmp_path / "results")],
        cwd=copy,
        env={**os.environ, "PYTHONPATH": str(copy)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert f"judges from {copy / 'judges' / '__init__.py'}" in proc.stderr  # the copy, not the install
    assert proc.returncode == 0, proc.stderr[-3000:]
    ((_, rec),) = find_runs([tmp_path / "results"])
    assert rec.judge.id == "prefix" and rec.metrics["ASR"].value == 50 and rec.metrics["ASR"].n == 8
    assert not (ROOT / "judges" / "prefix.py").exists()
