"""The self-test gate never passes on a config, baseline or measurement it misread.

A config of the wrong shape (thresholds as a list, `judge: [keyword]`, `seed: abc`, bytes that
are not UTF-8) and any number that is not finite (a NaN tolerance, an infinite threshold, a NaN
baseline value) is a configuration error: exit 2 before the suite runs, naming the file and every
key at fault. NaN compares false with everything, so it would otherwise pass any check.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from mis_eval.cli import main
from mis_eval.selftest.card import Card, write_card
from mis_eval.selftest.compare import FAIL, Measurement, evaluate, passed
from mis_eval.selftest.config import load_config

SUITE = "suites: {quick: {mis_easy: {n: 2}}}\nthresholds: {'mis_*/ASR': {max: 50}}\n"  # a case may override
BAD_CONFIGS = {
    "thresholds as a list": (
        "thresholds:\n  - mis_hard/ASR\n",
        ["thresholds: Input should be a valid dictionary"],
    ),
    "judge as a list": ("judge: [keyword]\n", ["judge: Input should be a valid string (got ['keyword'])"]),
    "seed as text": ("seed: abc\n", ["seed: Input should be a valid integer (got 'abc')"]),
    "NaN tolerance": (
        "tolerance: {default: .nan}\nthresholds: {'mis_*/ASR': {max: 50}}\n",
        ["tolerance.default: not a finite number"],
    ),
    "infinite threshold": (
        "thresholds: {'mis_*/ASR': {max: .inf}}\n",
        ["thresholds.mis_*/ASR.max: not a finite"],
    ),
    "max_excluded above 1": ("max_excluded: 2\n", ["max_excluded: Input should be less than or equal to 1"]),
    "max_excluded below 0": (
        "max_excluded: -0.1\n",
        ["max_excluded: Input should be greater than or equal to 0"],
    ),
    "max_excluded NaN": ("max_excluded: .nan\n", ["max_excluded: not a finite number"]),
    "negative tolerance": ("tolerance: {default: -1}\n", ["tolerance.default: Input should be greater than"]),
    "flips alpha NaN": ("flips: {alpha: .nan}\n", ["flips.alpha: not a finite number"]),
    "every problem at once": (
        "seed: abc\njudge: [keyword]\nthresholds: [1]\ntreshold: 1\n",
        ["4 problem(s)", "seed:", "judge:", "thresholds:", "treshold: unknown key"],
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_CONFIGS))
def test_a_config_of_the_wrong_shape_is_exit_2_naming_file_and_key(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text, expected = BAD_CONFIGS[case]
    path = tmp_path / "selftest.yaml"
    path.write_text(SUITE + text)
    status = main(["selftest", "--model", "mis_demo", "--config", str(path), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert status == 2, err
    assert f"{path}:" in err and all(e in err for e in expected), err
    assert "Traceback" not in err and not (tmp_path / "out").exists()  # refused before the suite ran


def test_a_config_that_is_not_utf8_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "selftest.yaml"
    path.write_bytes((SUITE + "judge: caf\xe9\n").encode("latin-1"))
    assert main(["selftest", "--model", "mis_demo", "--config", str(path)]) == 2
    assert f"{path}: cannot read selftest config" in capsys.readouterr().err and "not UTF-8" in str(
        pytest.raises(ValueError, load_config, path).value
    )


def measured(value: float, n: int = 100) -> Measurement:
    return Measurement(
        "mis_hard/ASR",
        value,
        n=n,
        better="lower",
        kind="safety",
        judge={"sig": "j", "label": "J"},
        data={"sig": "d", "label": "D"},
    )


def test_a_nan_baseline_is_exit_2_not_held(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    card = Card(
        model={"name": "m", "adapter": "mis_demo", "args": ""},
        suite="quick",
        judge="keyword",
        config={"path": "c.yaml", "sha256": "0" * 64, "seed": 1},
        measurements={"mis_hard/ASR": measured(30.0)},
        checks=[],
    )
    report = write_card(card, tmp_path / "base")["json"]
    data = json.loads(report.read_text())
    data["measurements"]["mis_hard/ASR"]["value"] = float("nan")
    report.write_text(json.dumps(data))  # json writes NaN, which Python's reader accepts
    path = tmp_path / "selftest.yaml"
    path.write_text(SUITE)
    status = main(["selftest", "--model", "mis_demo", "--config", str(path), "--baseline", str(report)])
    err = capsys.readouterr().err
    assert status == 2 and f"baseline {report}: measurements: not a finite number" in err, err
    assert "mis_hard/ASR.value = nan" in err


def test_non_finite_numbers_never_pass_a_check(tmp_path: Path) -> None:
    """Even handed over in code, past the file checks: NaN fails thresholds and baselines."""
    path = tmp_path / "selftest.yaml"
    path.write_text(SUITE + "thresholds: {'mis_*/ASR': {max: 40}}\n")
    config = load_config(path)
    for value in (math.nan, math.inf):
        (check,) = [c for c in evaluate({"mis_hard/ASR": measured(value)}, config) if c.kind == "threshold"]
        assert check.status == FAIL
    baseline = {"mis_hard/ASR": measured(math.nan)}
    checks = [c for c in evaluate({"mis_hard/ASR": measured(30.0)}, config, baseline) if c.kind == "baseline"]
    assert [c.status for c in checks] == [FAIL] and "not a finite number" in checks[0].message
    config.tolerance = {"default": math.nan}
    assert not passed(evaluate({"mis_hard/ASR": measured(30.0)}, config, {"mis_hard/ASR": measured(20.0)}))


def test_a_measurement_that_is_not_finite_is_a_configuration_error() -> None:
    """What `mis-eval selftest` checks before it evaluates (exit 2 when it raises)."""
    from mis_eval.selftest.compare import check_finite

    check_finite({"mis_hard/ASR": measured(30.0)}, "measured")
    with pytest.raises(ValueError, match=r"measured: not a finite number: mis_hard/ASR.value = nan"):
        check_finite({"mis_hard/ASR": measured(math.nan)}, "measured")
