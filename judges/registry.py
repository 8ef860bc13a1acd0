"""Judges by name: `get_judge("gpt4o", model="gpt-4o-2024-08-06")`.

Each judge module registers itself with `@register_judge("name")`; the modules are
imported lazily here so that choosing the offline keyword judge never imports openai.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from judges.base import Judge

_JUDGES: dict[str, type[Judge]] = {}
# name -> module that registers it (imported on first use)
_MODULES: dict[str, str] = {
    "keyword": "judges.keyword",
    "gpt4o": "judges.openai_judge",
    "openai": "judges.openai_judge",
    "local": "judges.openai_judge",
    "vllm": "judges.vllm_judge",
    "harmbench": "judges.harmbench",
}

ENV_JUDGE = "MIS_EVAL_JUDGE"  # judge name, e.g. "gpt4o", "local", "keyword"; "none" skips judging
ENV_JUDGE_ARGS = (
    "MIS_EVAL_JUDGE_ARGS"  # e.g. "base_url=http://127.0.0.1:8000/v1,model=Qwen/Qwen2.5-VL-7B-Instruct"
)

J = TypeVar("J", bound=type[Judge])


def register_judge(name: str) -> Callable[[J], J]:
    def deco(cls: J) -> J:
        _JUDGES[name] = cls
        cls.name = name
        return cls

    return deco


def list_judges() -> list[str]:
    return sorted(set(_MODULES) | set(_JUDGES))


def judge_class(name: str) -> type[Judge]:
    """The class registered under `name` (its module imported on first use), without building one."""
    if name not in _JUDGES and name in _MODULES:
        importlib.import_module(_MODULES[name])
    try:
        return _JUDGES[name]
    except KeyError:
        raise ValueError(f"unknown judge {name!r}; available: {', '.join(list_judges())}") from None


def get_judge(name: str, **options: Any) -> Judge:
    return judge_class(name)(**options)


def default_judge_name() -> str:
    """GPT-4o when an OpenAI key is present, else the offline keyword judge (labelled as such)."""
    return os.environ.get(ENV_JUDGE) or ("gpt4o" if os.environ.get("OPENAI_API_KEY") else "keyword")


def make_judge(name: str | None = None, options: str | Mapping[str, Any] | None = None) -> Judge:
    """A judge by name (default: from the environment); the env's options apply to the env's judge."""
    name = name or default_judge_name()
    opts = parse_options(options) if isinstance(options, str) or options is None else dict(options)
    if options is None and name == os.environ.get(ENV_JUDGE):
        opts = parse_options(os.environ.get(ENV_JUDGE_ARGS))
    return get_judge(name, **opts)


def parse_options(text: str | None) -> dict[str, Any]:
    """`"model=gpt-4o,concurrency=32"` -> dict (numbers and booleans converted), as lmms-eval model_args."""
    out: dict[str, Any] = {}
    for part in filter(None, (p.strip() for p in (text or "").split(","))):
        if "=" not in part:
            raise ValueError(f"judge option {part!r} is not key=value")
        k, v = part.split("=", 1)
        out[k.strip()] = _convert(v.strip())
    return out


def _convert(v: str) -> Any:
    if v.lower() in {"true", "false"}:
        return v.lower() == "true"
    for cast in (int, float):
        try:
            return cast(v)
        except ValueError:
            pass
    return v
