"""`mis-eval selftest`: run a suite on a checkpoint, judge it, gate it on thresholds and a baseline.

Exit status (for release pipelines): 0 all checks passed; 1 a threshold, baseline or
judge-failure check failed; 2 bad command line, config or baseline file; 3 the suite
could not be run (model or data failed to load, lmms-eval failed).
"""

from __future__ import annotations

import argparse
import sys
import traceback
from pathlib import Path

HELP = "run a quick/full suite on a model, judge it, gate on thresholds and a baseline (exit 1 on regression)"
EXIT_PASS, EXIT_FAIL, EXIT_USAGE, EXIT_RUN = 0, 1, 2, 3


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--model", required=True, help="lmms-eval model name, e.g. mis_qwen2_vl, qwen2_vl, mis_demo"
    )
    p.add_argument(
        "--model-args",
        "--model_args",
        dest="model_args",
        default="",
        help="lmms-eval model_args, e.g. pretrained=Qwen/Qwen2-VL-7B-Instruct",
    )
    p.add_argument("--suite", default="quick", help="suite from the config (bundled: quick, full)")
    p.add_argument(
        "--config",
        help="selftest YAML/JSON, or a bundled one: default (all benchmarks), offline (MIS, keyword judge)",
    )
    p.add_argument("--baseline", help="a previous report.json to compare with (overrides the config's)")
    p.add_argument(
        "--judge", help="NAME[:OPTIONS] (overrides the config's; default: gpt4o with a key, else keyword)"
    )
    p.add_argument(
        "--name", help="model name shown in the report (default: from --model-args pretrained=...)"
    )
    p.add_argument("--out", type=Path, help="report folder (default: selftest/<model>/<time>)")
    p.add_argument(
        "--save-baseline",
        type=Path,
        metavar="PATH",
        help="when every check passes, copy report.json here (the next run's baseline)",
    )
    p.add_argument("--batch-size", type=int, default=1)
    p.add_argument("--device", default=None)
    p.add_argument("--no-progress", action="store_true")


def run(args: argparse.Namespace) -> int:
    from judges.registry import default_judge_name
    from mis_eval.core.files import atomic_write
    from mis_eval.core.record import utc_now
    from mis_eval.leaderboard.sources import lmms_model_name
    from mis_eval.leaderboard.spec import load_spec
    from mis_eval.records import slug
    from mis_eval.selftest.card import Card, read_baseline, redact_args, write_card
    from mis_eval.selftest.compare import check_finite, evaluate, measurements
    from mis_eval.selftest.config import load_config
    from mis_eval.selftest.flips import VIEWER_DIR, flip_checks, flip_report, judged_records
    from mis_eval.selftest.runner import SuiteError, run_suite
    from mis_eval.viewer import build_viewer

    try:
        config = load_config(args.config)
        plans = config.suite(args.suite)
        baseline_path = Path(args.baseline) if args.baseline else config.baseline
        baseline, baseline_meta = read_baseline(baseline_path) if baseline_path else (None, None)
        if not config.thresholds and baseline is None:  # a gate that checks nothing must not pass
            raise ValueError(
                f"{config.path}: no checks: the config has no thresholds and there is no baseline; "
                'add thresholds (e.g. "mis_*/ASR": {max: 50}) or pass --baseline report.json'
            )
        spec = load_spec()
    except (ValueError, FileNotFoundError) as e:
        print(f"mis-eval selftest: {e}", file=sys.stderr)
        return EXIT_USAGE
    judge = args.judge or config.judge or default_judge_name()
    name = args.name or lmms_model_name({"model": args.model, "model_args": args.model_args})
    started = utc_now()
    out = args.out or Path("selftest") / slug(name) / started.replace(":", "").replace("+0000", "Z")
    try:
        suite = run_suite(
            args.model,
            args.model_args,
            plans,
            seed=config.seed,
            judge=judge,
            work_dir=out,
            spec=spec,
            display_name=name,
            batch_size=args.batch_size,
            device=args.device,
            progress=not args.no_progress,
        )
    except ValueError as e:
        print(f"mis-eval selftest: {e}", file=sys.stderr)
        return EXIT_USAGE
    except SuiteError as e:
        print(f"mis-eval selftest: the suite could not be run: {e}", file=sys.stderr)
        return EXIT_RUN
    except Exception as e:  # the model or lmms-eval failed: not a verdict on the model
        traceback.print_exc()
        print(f"mis-eval selftest: the suite could not be run: {type(e).__name__}: {e}", file=sys.stderr)
        return EXIT_RUN
    current = measurements(suite.entries, spec)
    try:
        check_finite(current, "measured")
    except ValueError as e:
        print(f"mis-eval selftest: {e}", file=sys.stderr)
        return EXIT_USAGE
    checks = evaluate(current, config, baseline, suite.problems)
    viewer = flips = None
    notes: list[str] = []
    if suite.records:
        viewer = (
            build_viewer(suite.records, out / VIEWER_DIR, progress=False).html.relative_to(out).as_posix()
        )
    if baseline_meta is not None:
        base_records = judged_records(baseline_meta["run_records"])
        if base_records and suite.records:
            report = flip_report(base_records, judged_records(suite.records), config.flips, judge=judge)
            checks += flip_checks(report, config.flips)
            flips = report.to_dict()
            notes += report.notes
        else:
            notes.append(
                "flip report: the baseline has no per-sample run records (older report or files moved)"
            )
    if not checks:
        print(f"mis-eval selftest: {config.path}: no check applied to this run", file=sys.stderr)
        return EXIT_USAGE
    card = Card(
        model={"name": name, "adapter": args.model, "args": redact_args(args.model_args)},
        suite=args.suite,
        judge=judge,
        config={"path": str(config.path), "sha256": config.sha256, "seed": config.seed},
        measurements=current,
        checks=checks,
        notes=suite.notes + sorted({n for e in suite.entries for n in e.notes}) + notes,
        subsets=suite.subsets,
        baseline=baseline_meta,
        runs=suite.runs,
        run_records=suite.records,
        flips=flips,
        viewer=viewer,
        started_at=started,
    )
    paths = write_card(card, out)
    failed = [c for c in checks if c.status == "fail"]
    print(
        f"\nself-test {'PASSED' if card.passed else 'FAILED'}: {len(failed)} failed check(s) of {len(checks)}"
    )
    for c in failed:
        print(f"  FAIL {c.kind:9} {c.ref}: {c.message}")
    print(f"report: {paths['html']}\n        {paths['json']}")
    if card.passed and args.save_baseline:
        atomic_write(args.save_baseline, paths["json"].read_bytes())
        print(f"baseline saved: {args.save_baseline}")
    return EXIT_PASS if card.passed else EXIT_FAIL
