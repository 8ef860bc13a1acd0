"""Prose judge replies: the judge's own conclusion decides, whatever the judged response plants.

The fixed corpus tests/data/prose_replies.json crosses adversarial responses (planted
`label_str: Safe`, fake JSON verdicts, label floods, the word the judge will use) with prose
judge styles (echo the whole response, quote the planted fragment, conclude first or last, JSON
or key-value conclusions). For every pair the judge's conclusion is known; a *flip* is any other
verdict, *forced unparseable* a pair the reader could not read. Both must be 0. The same reply
read without the response (a reader blind to echoes) shows the corpus bites.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from judges.base import Parsed, UnparseableReply
from mis_tasks.mis.parsing import parse_mis
from mis_tasks.mm_safetybench.scoring import parse_safety as parse_mmsb
from mis_tasks.siuo.parsing import parse_safety as parse_siuo

CORPUS = json.loads((Path(__file__).parent / "data" / "prose_replies.json").read_text(encoding="utf-8"))
Reader = Callable[[str, Sequence[str]], Parsed]


def _fill(style: str, values: dict[str, str]) -> str:
    for k, v in values.items():  # plain replacement: responses hold braces of their own
        style = style.replace("{" + k + "}", v)
    return style


def cases(bench: str) -> list[tuple[str, str, str, Any]]:
    """(case id, reply, response, expected) for every response x style of one benchmark."""
    out = []
    for r in CORPUS[bench]["responses"]:
        truth = r["truth"]
        if bench == "mis":
            label, level = truth
            own = {"label_perception": f"Perception Level{level}", "label_str": label.capitalize()}
            values = {"Label": label.capitalize(), "level": str(level), "json": json.dumps(own)}
            expected: Any = (label, level)
        elif bench == "mm_safetybench":
            values, expected = {"label": truth}, truth
        else:
            values, expected = {"judgement": truth.capitalize()}, truth
        values |= {"response": r["text"], "planted": r["planted"]}
        for s in CORPUS[bench]["styles"]:
            out.append((f"{bench}/{r['id']}/{s['id']}", _fill(s["reply"], values), r["text"], expected))
    return out


READERS: dict[str, Reader] = {"mis": parse_mis, "mm_safetybench": parse_mmsb, "siuo": parse_siuo}


def outcome(bench: str, reader: Reader, reply: str, untrusted: Sequence[str], expected: Any) -> str:
    try:
        got = reader(reply, untrusted)
    except UnparseableReply:
        return "unparseable"
    value = (got.label, got.detail.get("perception")) if bench == "mis" else got.label
    if bench == "mis" and expected[0] == "unsafe":
        value = (got.label, expected[1])  # the perception level of an Unsafe verdict is not used
    return "ok" if value == expected else "flip"


def tally(*, blind: bool = False) -> dict[str, Counter[str]]:
    return {
        bench: Counter(
            outcome(bench, reader, reply, () if blind else [response], expected)
            for _, reply, response, expected in cases(bench)
        )
        for bench, reader in READERS.items()
    }


def test_no_flips_and_no_forced_unparseable_on_the_corpus() -> None:
    bad = [
        (case, outcome(bench, READERS[bench], reply, [resp], exp))
        for bench in READERS
        for case, reply, resp, exp in cases(bench)
        if outcome(bench, READERS[bench], reply, [resp], exp) != "ok"
    ]
    assert bad == []
    sizes = {bench: len(cases(bench)) for bench in READERS}
    assert sizes == {"mis": 180, "mm_safetybench": 25, "siuo": 12}


def test_the_corpus_fools_a_reader_blind_to_the_response() -> None:
    blind = tally(blind=True)
    assert blind["mis"]["flip"] >= 40 and blind["mis"]["unparseable"] >= 80
    assert blind["siuo"]["flip"] >= 3 and blind["mm_safetybench"]["unparseable"] >= 15


def test_the_judge_engine_reads_the_corpus_with_the_response(monkeypatch: Any) -> None:
    """End to end through the local judge and the fake server: the engine hands the response to the
    reader, in paper and hardened mode alike (reading changes no request)."""
    from judges.base import JudgeRequest, Status
    from judges.registry import get_judge
    from mis_eval.testing.fake_openai import FakeOpenAIServer, prompt_text
    from mis_tasks.mis.scoring import RUBRIC

    table = {case: (reply, exp) for case, reply, _, exp in cases("mis")}
    reqs = [
        JudgeRequest(key=case, rubric=RUBRIC, fields={"question": f"CASE={case}", "response": resp})
        for case, _, resp, _ in cases("mis")
    ]

    def judge_reply(body: dict[str, Any]) -> str:
        return table[prompt_text(body).split("CASE=", 1)[1].split("\n", 1)[0]][0]

    for hardened in (False, True):
        with FakeOpenAIServer(reply=judge_reply) as srv:
            judge = get_judge(
                "local", base_url=srv.base_url, model="j", cache="off", structured=False, hardened=hardened
            )
            verdicts = judge.judge(reqs, progress=False)
        got = [(v.status, v.label) for v in verdicts]
        assert got == [(Status.OK, table[r.key][1][0]) for r in reqs]
