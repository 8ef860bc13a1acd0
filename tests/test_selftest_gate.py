"""The selftest gate on stored runs: subsets, thresholds, baseline regressions, judge failures, card."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mis_eval.core.record import Metric
from mis_eval.leaderboard.sources import load_results
from mis_eval.leaderboard.spec import load_spec
from mis_eval.records import write_run
from mis_eval.selftest.card import Card, read_baseline, redact_args, write_card
from mis_eval.selftest.compare import FAIL, INFO, PASS, Measurement, evaluate, measurements, passed
from mis_eval.selftest.config import load_config
from mis_eval.selftest.subset import allocate, stratified_indices
from mis_eval.testing.synthetic_runs import GPT4O_JUDGE, lmms_results, mis_record, write_lmms_results

T0 = datetime(2025, 6, 1, tzinfo=UTC)


def results(tmp: Path, asr: float, acc: float, *, judge: dict | None = None, excluded: int = 0) -> dict:
    """A model's runs: MIS hard judged (ASR given), MMStar from lmms-eval (accuracy given)."""
    rec = mis_record("vendor/model", "mis_hard", random.Random(0), T0, judge=judge)
    rec.metrics["ASR"] = Metric(asr, asr - 4, asr + 4, 100 - excluded, excluded)
    write_run(rec, [], tmp)
    write_lmms_results(tmp, lmms_results("vendor/model", {"mmstar": acc}, T0))
    return measurements(load_results(tmp, load_spec()).entries, load_spec())


def config(tmp: Path, text: str):  # noqa: ANN201
    path = tmp / "selftest.yaml"
    path.write_text(text)
    return load_config(path)


def by(checks: list, kind: str) -> dict:  # noqa: ANN001
    return {c.ref: c for c in checks if c.kind == kind}


def test_stratified_subset_is_fixed_proportional_and_seeded() -> None:
    strata = ["a"] * 50 + ["b"] * 30 + ["c"] * 20
    idx = stratified_indices(strata, 10, seed=1, task="t")
    assert idx == stratified_indices(strata, 10, seed=1, task="t")  # fixed
    assert idx == sorted(idx) and len(set(idx)) == 10
    counts = {k: sum(strata[i] == k for i in idx) for k in "abc"}
    assert counts == {"a": 5, "b": 3, "c": 2}  # proportional
    assert stratified_indices(strata, 10, seed=2, task="t") != idx  # the seed matters
    assert stratified_indices(strata, 10, seed=1, task="other") != idx  # so does the task
    assert stratified_indices(strata, None, seed=1, task="t") == list(range(100))
    every_group = allocate({"big": 100, "tiny": 1, "mid": 10}, 5)
    assert every_group == {"big": 3, "mid": 1, "tiny": 1}
    assert sum(allocate({"x": 7, "y": 3, "z": 3}, 2).values()) == 2


def test_thresholds(tmp_path: Path) -> None:
    cur = results(tmp_path, asr=30.0, acc=60.0)
    cfg = config(
        tmp_path,
        'thresholds:\n  "mis_*/ASR": {max: 25}\n  mmstar/average: {min: 50}\n'
        '  "summary/Capability avg": {min: 70}\n  mis_easy/ASR: {max: 50}\n',
    )
    checks = by(evaluate(cur, cfg), "threshold")
    assert checks["mis_hard/ASR"].status == FAIL and "violates ≤ 25" in checks["mis_hard/ASR"].message
    assert checks["mmstar/average"].status == PASS
    assert checks["summary/Capability avg"].status == FAIL
    assert checks["mis_easy/ASR"].status == FAIL and "not measured" in checks["mis_easy/ASR"].message


def test_baseline_regression_is_direction_aware(tmp_path: Path) -> None:
    base = results(tmp_path / "base", asr=30.0, acc=60.0)
    cfg = config(tmp_path, "tolerance:\n  default: 2.0\n  '*ASR': 5.0\n")  # also summary/MIS ASR
    same = evaluate(results(tmp_path / "same", asr=34.0, acc=58.5), cfg, base)
    assert passed(same)  # ASR +4 within 5 pp, accuracy -1.5 within 2 pp
    worse = by(evaluate(results(tmp_path / "worse", asr=36.0, acc=57.0), cfg, base), "baseline")
    assert worse["mis_hard/ASR"].status == FAIL and "regressed" in worse["mis_hard/ASR"].message
    assert worse["mmstar/average"].status == FAIL  # -3 pp accuracy
    better = by(evaluate(results(tmp_path / "better", asr=10.0, acc=80.0), cfg, base), "baseline")
    assert better["mis_hard/ASR"].status == PASS and "improved" in better["mis_hard/ASR"].message
    assert better["mmstar/average"].status == PASS


def test_baseline_with_another_judge_is_not_comparable(tmp_path: Path) -> None:
    base = results(tmp_path / "base", asr=30.0, acc=60.0)
    cur = results(tmp_path / "cur", asr=30.0, acc=60.0, judge=GPT4O_JUDGE)
    checks = by(evaluate(cur, config(tmp_path, "{}"), base), "baseline")
    assert checks["mis_hard/ASR"].status == FAIL and "not comparable" in checks["mis_hard/ASR"].message
    assert checks["mmstar/average"].status == PASS


def test_missing_and_new_metrics(tmp_path: Path) -> None:
    base = results(tmp_path / "base", asr=30.0, acc=60.0)
    cur = {k: v for k, v in base.items() if not k.startswith("mmstar")}
    cur["mis_hard/extra"] = Measurement("mis_hard/extra", 5.0)
    checks = by(evaluate(cur, config(tmp_path, "{}"), base), "baseline")
    assert checks["mmstar/average"].status == FAIL and "not measured now" in checks["mmstar/average"].message
    assert checks["mis_hard/extra"].status == INFO


def test_judge_failures_over_the_limit_fail(tmp_path: Path) -> None:
    cur = results(tmp_path, asr=30.0, acc=60.0, excluded=10)
    checks = by(evaluate(cur, config(tmp_path, "max_excluded: 0.05\n")), "judge")
    assert checks["mis_hard"].status == FAIL and "10 of 100" in checks["mis_hard"].message
    assert passed(evaluate(cur, config(tmp_path, "max_excluded: 0.2\n")))


def test_report_card_round_trips_as_the_next_baseline(tmp_path: Path) -> None:
    cur = results(tmp_path, asr=30.0, acc=60.0)
    cfg = config(tmp_path, "{}")
    payload = "<script>alert(1)</script>"
    card = Card(
        model={"name": payload, "adapter": "x", "args": redact_args("pretrained=a,api_key=sk-SECRET")},
        suite="quick",
        judge="keyword",
        config={"path": "c", "sha256": "0" * 64, "seed": 1},
        measurements=cur,
        checks=evaluate(cur, cfg),
    )
    paths = write_card(card, tmp_path / "card")
    data = json.loads(paths["json"].read_text())
    assert data["verdict"] == "pass" and data["schema"] == "mis-eval.selftest/1"
    assert (
        "sk-SECRET" not in paths["json"].read_text() and data["model"]["args"] == "pretrained=a,api_key=***"
    )
    html = paths["html"].read_text()
    assert payload not in html and "&lt;script&gt;" in html
    base, meta = read_baseline(paths["json"])
    assert base.keys() == cur.keys() and base["mis_hard/ASR"].value == 30.0 and meta["model"] == payload
    assert passed(evaluate(cur, cfg, base))
    (tmp_path / "bad.json").write_text('{"schema": "mis-eval.run/1"}')
    with pytest.raises(ValueError, match="bad.json: not a selftest report"):
        read_baseline(tmp_path / "bad.json")


def test_config_errors_name_the_file_and_entry(tmp_path: Path) -> None:
    with pytest.raises(
        ValueError, match=r"selftest\.yaml: .*suites\.quick\.mis_hard\.n: Input should be greater"
    ):
        config(tmp_path, "suites:\n  quick:\n    mis_hard: {n: 0}\n")
    with pytest.raises(ValueError, match=r"thresholds: 'mis_hard' is not 'task/metric'"):
        config(tmp_path, "thresholds:\n  mis_hard: {max: 3}\n")
    with pytest.raises(ValueError, match="unknown key"):
        config(tmp_path, "treshold: {}\n")
    with pytest.raises(ValueError, match="no suite 'nightly'"):
        load_config().suite("nightly")
    bundled = load_config()
    quick = {p.task for p in bundled.suite("quick")}
    assert quick >= {"mis_easy", "mis_hard", "mis_real", "mmstar", "mmt_val"}


def test_bundled_configs_by_name() -> None:
    offline = load_config("offline")
    assert offline.judge == "keyword" and [p.task for p in offline.suite("quick")] == [
        "mis_easy",
        "mis_hard",
        "mis_real",
    ]
    with pytest.raises(ValueError, match="cannot read"):
        load_config("no_such_config")
