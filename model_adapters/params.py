"""Generation parameters, taken from the task's generation_kwargs (lmms-eval `gen_kwargs`)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

DEFAULT_MAX_NEW_TOKENS = 1024  # what MIS uses; tasks normally set their own


@dataclass(frozen=True)
class GenParams:
    max_new_tokens: int
    temperature: float = 0.0  # 0: greedy
    top_p: float = 1.0
    stop: tuple[str, ...] = ()  # the task's `until`; adapters add none of their own
    repetition_penalty: float = 1.0  # the task's `repetition_penalty` (MIR-SafetyBench: 1.05); 1: none
    system: str | None = None  # the task's `system_prompt`: a system turn before the user turn

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0

    @classmethod
    def from_task(
        cls, gen_kwargs: dict[str, Any] | None, max_new_tokens: int | None = None, cap: int | None = None
    ) -> GenParams:
        """`max_new_tokens` (a model arg) overrides the task's; otherwise the family's reference budget
        `cap` (DeepSeek-VL2: 512) limits it, so short capability budgets stay as their tasks set them."""
        kw = dict(gen_kwargs or {})
        tokens = int(max_new_tokens or kw.get("max_new_tokens") or DEFAULT_MAX_NEW_TOKENS)
        if cap and not max_new_tokens:
            tokens = min(tokens, int(cap))
        temperature = float(kw.get("temperature") or 0.0)
        # do_sample=False means greedy whatever the temperature (transformers' semantics);
        # without do_sample a positive temperature samples (vLLM/OpenAI semantics).
        if kw.get("do_sample") is False:
            temperature = 0.0
        top_p = kw.get("top_p")
        until = kw.get("until") or ()
        if isinstance(until, str):
            until = (until,)
        system = kw.get("system_prompt")
        return cls(
            max_new_tokens=int(tokens),
            temperature=temperature,
            top_p=1.0 if top_p in (None, 0, 0.0) else float(top_p),
            stop=tuple(s for s in until if s),
            repetition_penalty=float(kw.get("repetition_penalty") or 1.0),
            system=None if system is None else str(system),
        )

    def body(self) -> dict[str, Any]:
        """The settings as a plain dict, leaving out the task extras at their defaults (so response
        caches written before they existed keep their keys)."""
        out: dict[str, Any] = dataclasses.asdict(self)
        if out["repetition_penalty"] == 1.0:
            del out["repetition_penalty"]
        if out["system"] is None:
            del out["system"]
        return out

    def truncate(self, text: str) -> str:
        """Cut at the first stop string (the transformers backend stops on EOS only)."""
        cut = min((i for i in (text.find(s) for s in self.stop) if i >= 0), default=-1)
        return text if cut < 0 else text[:cut]
