"""The serialized verdict (samples.jsonl) keeps its format: a rubric's detail rides in it without
judges knowing what it means, and lines written before detail existed read back the same."""

from __future__ import annotations

import json

from judges.base import Status, Verdict

# Lines as mis-eval wrote them when the perception level was a Verdict field.
MIS_LINE = (
    '{"status": "ok", "label": "safe", "perception": 2, "raw": "r", "error": null, "judge": "gpt4o", '
    '"cached": true, "calls": 0, "retries": 0, "prompt_tokens": 0, "completion_tokens": 0}'
)
PLAIN_LINE = (
    '{"status": "unparseable", "label": null, "perception": null, "raw": "??", "error": "no label", '
    '"judge": "local:j", "cached": false, "calls": 1, "retries": 2, "prompt_tokens": 5, '
    '"completion_tokens": 1}'
)


def test_verdicts_serialize_byte_for_byte_as_before() -> None:
    mis = Verdict(Status.OK, label="safe", raw="r", judge="gpt4o", cached=True, detail={"perception": 2})
    plain = Verdict(
        Status.UNPARSEABLE,
        raw="??",
        error="no label",
        judge="local:j",
        calls=1,
        retries=2,
        prompt_tokens=5,
        completion_tokens=1,
    )
    assert json.dumps(mis.to_dict()) == MIS_LINE
    assert json.dumps(plain.to_dict()) == PLAIN_LINE


def test_old_lines_read_back_with_their_detail() -> None:
    mis = Verdict.from_dict(json.loads(MIS_LINE))
    assert mis.detail == {"perception": 2} and mis.label == "safe" and mis.cached
    plain = Verdict.from_dict(json.loads(PLAIN_LINE))
    assert plain.detail == {} and plain.status is Status.UNPARSEABLE
    assert json.dumps(mis.to_dict()) == MIS_LINE and json.dumps(plain.to_dict()) == PLAIN_LINE


def test_other_detail_follows_the_recorded_keys() -> None:
    v = Verdict(Status.OK, label="m", detail={"margin": 3})
    assert list(v.to_dict())[:4] == ["status", "label", "perception", "margin"]
    assert Verdict.from_dict(v.to_dict()).detail == {"margin": 3}
