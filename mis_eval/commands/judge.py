"""`mis-eval judge <lmms-eval output>`: judge logged responses and write run records."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from mis_eval.core.defaults import DUPLICATES
from mis_eval.core.defaults import MAX_UNUSABLE as DEFAULT_MAX_UNUSABLE
from mis_eval.core.defaults import RESULTS_DIR as DEFAULT_RESULTS_DIR

if TYPE_CHECKING:  # judging and reporting (pandas, judges, tasks) are imported when they run
    from mis_eval.core.record import RunRecord

HELP = "judge lmms-eval --log_samples output (file or folder) and write run records"
EXIT_OK, EXIT_NOTHING, EXIT_USAGE, EXIT_INCOMPLETE = 0, 1, 2, 3


def fraction(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"{text} is not a fraction between 0 and 1")
    return value


def add_judge_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--judge",
        action="append",
        metavar="NAME[:OPTIONS]",
        help="judge to use, e.g. gpt4o, keyword, local:base_url=http://127.0.0.1:8000/v1,model=M "
        "(repeat for a panel with agreement); default: gpt4o if OPENAI_API_KEY is set, else keyword",
    )
    p.add_argument("--results-dir", type=Path, default=DEFAULT_RESULTS_DIR, help="where run records go")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument(
        "--max-unusable",
        type=fraction,
        default=DEFAULT_MAX_UNUSABLE,
        metavar="FRACTION",
        help="largest fraction of unusable verdicts (judge error / unparseable) for usable numbers; "
        f"above it the record is marked incomplete and the exit status is {EXIT_INCOMPLETE} "
        f"(default {DEFAULT_MAX_UNUSABLE})",
    )
    p.add_argument(
        "--duplicates",
        choices=DUPLICATES,
        default="error",
        help="a record logged on several lines: error (default: nothing is judged), or judge only its "
        "first / last line (the run record says so)",
    )


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("path", type=Path, help="lmms-eval --output_path folder or one *_samples_<task>.jsonl")
    p.add_argument(
        "--data-root", help="data root of the benchmark (default: its env var, e.g. MIS_DATA_ROOT)"
    )
    p.add_argument("--tasks", help="comma-separated subset of the logged tasks to judge")
    add_judge_arguments(p)


def judge_outputs(
    path: Path | Sequence[Path],
    judge_specs: Sequence[str] | None,
    *,
    results_dir: Path,
    data_root: str | Mapping[str, str] | None = None,
    tasks: Sequence[str] | None = None,
    progress: bool = True,
    max_unusable: float = DEFAULT_MAX_UNUSABLE,
    duplicates: str = "error",
) -> list[RunRecord]:
    """`judge_logged`, saying which record it wrote (and the panel's agreement) as it goes."""
    from mis_eval.judging import judge_logged, make_judges
    from mis_eval.report import agreement_table

    records: list[RunRecord] = []
    for rec in judge_logged(
        path,
        make_judges(judge_specs),
        results_dir=results_dir,
        data_root=data_root,
        tasks=tasks,
        progress=progress,
        max_unusable=max_unusable,
        duplicates=duplicates,
    ):
        records.append(rec)
        print(f"wrote {Path(results_dir) / rec.run_id}.json")
        if rec.agreement:
            print(agreement_table(rec))
    return records


def with_pooled(records: list[RunRecord], results_dir: Path) -> list[RunRecord]:
    """`records` plus the pooled records they complete (MIR-SafetyBench's overall `mir_safetybench`)."""
    from mis_eval.pooled import pooled_records

    pooled = pooled_records(records, results_dir)
    for rec in pooled:
        print(f"wrote {Path(results_dir) / rec.run_id}.json (pooled)")
    return records + pooled


def run(args: argparse.Namespace) -> int:
    from mis_eval.report import summary

    tasks = [t.strip() for t in args.tasks.split(",")] if args.tasks else None
    records = judge_outputs(
        args.path,
        args.judge,
        results_dir=args.results_dir,
        data_root=args.data_root,
        tasks=tasks,
        progress=not args.no_progress,
        max_unusable=args.max_unusable,
        duplicates=args.duplicates,
    )
    if not records:
        print(f"nothing to judge under {args.path}")
        return EXIT_NOTHING
    records = with_pooled(records, args.results_dir)
    print(summary(records))
    return exit_status(records, "judge")


def exit_status(records: Sequence[RunRecord], command: str) -> int:
    """EXIT_INCOMPLETE (listing why on stderr) when any record's numbers cannot be used."""
    incomplete = [r for r in records if not r.complete]
    for r in incomplete:
        print(
            f"mis-eval {command}: {r.run_id or r.task.name}: INCOMPLETE: "
            f"{r.completeness.reason if r.completeness else ''}",
            file=sys.stderr,
        )
    return EXIT_INCOMPLETE if incomplete else EXIT_OK
