"""Names cannot reorder what is shown around them (bidi controls), and a gate without checks fails."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from pathlib import Path

from mis_eval.cli import main
from mis_eval.core.record import Metric
from mis_eval.display import BIDI_CONTROLS, neutralise_bidi
from mis_eval.leaderboard import Options, build
from mis_eval.records import write_run
from mis_eval.report import summary
from mis_eval.selftest.card import Card, write_card
from mis_eval.selftest.compare import Measurement, evaluate
from mis_eval.selftest.config import load_config
from mis_eval.testing.synthetic_runs import mis_record

RLO_NAME = "org/good-model\u202elpp\u202c-\u2066x\u2069\u200f"
T0 = datetime(2025, 6, 1, tzinfo=UTC)


def no_bidi(text: str) -> bool:
    return not any(c in text for c in BIDI_CONTROLS)


def test_neutralise_makes_every_control_visible() -> None:
    out = neutralise_bidi("a\u202eb\u2066c\u200ed\u061c")
    assert out == "a[U+202E]b[U+2066]c[U+200E]d[U+061C]" and no_bidi(out)


def test_terminal_summary_shows_no_bidi_control() -> None:
    rec = mis_record(RLO_NAME, "mis_hard", random.Random(0), T0)
    rec.judge.id = "judge\u202eevil"
    text = summary([rec])
    assert no_bidi(text) and "org/good-model[U+202E]lpp" in text and "judge[U+202E]evil" in text


def test_leaderboard_html_md_csv_show_no_bidi_control(tmp_path: Path) -> None:
    rec = mis_record(RLO_NAME, "mis_hard", random.Random(0), T0)
    rec.metrics["ASR"] = Metric(40.0, 35.0, 45.0, 100, 0)
    rec.notes.append("note \u202ereversed")
    write_run(rec, [], tmp_path / "results")
    built = build(Options(tmp_path / "results", tmp_path / "out", reported=False))
    for kind in ("html", "md", "csv", "cells_csv"):
        text = built.files[kind].read_text(encoding="utf-8")
        assert no_bidi(text), kind
        shown = "good-model\\[U+202E\\]lpp" if kind == "md" else "good-model[U+202E]lpp"  # md escapes [ ]
        assert shown in text, kind


def test_selftest_card_shows_no_bidi_control(tmp_path: Path) -> None:
    label = {"sig": "s", "label": "L"}
    m = Measurement("mis_hard/ASR", 30.0, 26.0, 34.0, 100, 0, "lower", "metric", label, label)
    cfg_path = tmp_path / "c.yaml"
    cfg_path.write_text('thresholds: {"mis_*/ASR": {max: 50}}\n')
    card = Card(
        model={"name": RLO_NAME, "adapter": "x", "args": ""},
        suite="quick",
        judge="keyword\u202e",
        config={"path": "c", "sha256": "0" * 64, "seed": 1},
        measurements={m.ref: m},
        checks=evaluate({m.ref: m}, load_config(cfg_path)),
    )
    html = write_card(card, tmp_path / "card")["html"].read_text(encoding="utf-8")
    assert no_bidi(html) and "good-model[U+202E]lpp" in html


def test_a_gate_without_checks_is_a_configuration_error(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    (tmp_path / "empty.yaml").write_text(
        "judge: keyword\nsuites:\n  quick:\n    mis_hard: {n: 2}\nthresholds: {}\n"
    )
    code = main(
        [
            "selftest",
            "--model",
            "mis_demo",
            "--config",
            str(tmp_path / "empty.yaml"),
            "--out",
            str(tmp_path / "o"),
        ]
    )
    assert code == 2 and "no checks" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()  # refused before anything ran


def test_the_offline_config_has_real_checks() -> None:
    cfg = load_config("offline")
    limits = {t.pattern: t.max for t in cfg.thresholds}
    assert limits["mis_*/ASR"] is not None and limits["mis_*/ASR"] < 100  # a never-refusing model fails
    assert limits["summary/MIS ASR"] is not None and limits["summary/MIS ASR"] < 100
