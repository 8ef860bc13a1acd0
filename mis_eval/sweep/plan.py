"""The sweep plan (YAML): models × benchmark groups, the judges, the output folder, limits.

Read strictly, before anything runs: every key is known, every value has its type, names are
unique and everything a name refers to exists. An error names the file and the key
(`plan.yaml: models[2].gpus: expected a whole number >= 0, got -1`); `mis-eval sweep` exits 2.
Secrets never belong in a plan: API keys stay in the environment (`api_key_env=` names them).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mis_eval.core.secrets import secret_arg, url_secrets

ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# names of secrets (an API key, a token, a password); `..._env` names the variable holding one
SECRET_NAME = re.compile(r"(?i)(api[_-]?key|(?:^|_)(?:key|token)$|secret|passw|credential|^auth)")
# lmms-eval options the sweep sets itself for every job
OWN_OPTIONS = (
    "--model",
    "--model_args",
    "--tasks",
    "--output_path",
    "--limit",
    "--log_samples",
    "--predict_only",
    "--batch_size",
    "--gen_kwargs",
)
# lmms-eval 0.7.3 GeneralConfigTracker._get_model_name: the first of these found names the model
LMMS_NAME_PREFIXES = (
    "peft=",
    "delta=",
    "pretrained=",
    "model=",
    "model_version=",
    "model_name=",
    "model_id=",
    "path=",
    "engine=",
)
TOP = ("output", "judges", "benchmarks", "models", "env", "limits")
MODEL_KEYS = (
    "id",
    "model",
    "model_args",
    "gpus",
    "cpus",
    "batch_size",
    "gen_kwargs",
    "benchmarks",
    "cache",
    "lmms_eval_args",
)
LIMIT_KEYS = ("limit", "max_unusable", "timeout_s", "retries", "judge_workers")


class PlanError(ValueError):
    """A plan that cannot run; the message names the file and the key."""


@dataclass(frozen=True)
class ModelSpec:
    id: str  # the plan's name for the model: job ids, folders, the leaderboard row
    model: str  # lmms-eval --model
    model_args: tuple[tuple[str, str], ...] = ()  # lmms-eval --model_args, in order
    gpus: int = 1  # GPUs one job of this model needs (a Ray task's num_gpus)
    cpus: int = 1
    batch_size: str | None = None
    gen_kwargs: tuple[tuple[str, str], ...] = ()
    benchmarks: tuple[str, ...] | None = None  # groups this model runs (None: all)
    cache: bool = True  # a response cache per job, where the adapter takes `cache=`
    lmms_eval_args: tuple[str, ...] = ()  # any other lmms-eval option, as typed

    def args_text(self, cache: Path | None = None) -> str:
        """lmms-eval --model_args: the plan's, then `cache=` when the job has a response cache."""
        pairs = [*self.model_args, *([("cache", str(cache))] if cache is not None else [])]
        return ",".join(f"{k}={v}" for k, v in pairs)

    def recorded_name(self) -> str:
        """The model name lmms-eval, and so every run record, gives this model (from its args)."""
        args = self.args_text()
        for prefix in LMMS_NAME_PREFIXES:
            if prefix in args:
                return args.split(prefix)[1].split(",")[0]
        return self.model


@dataclass(frozen=True)
class Limits:
    limit: int | float | None = None  # lmms-eval --limit for every job: records say partial
    max_unusable: float = 0.05  # as `mis-eval judge --max-unusable`
    timeout_s: float | None = None  # per phase (generation, judging) of one job
    retries: int = 0  # extra tries of a crashed job within one sweep (Ray: the task's max_retries)
    judge_workers: int = 2  # judge processes at once, on the machine that runs the sweep


@dataclass(frozen=True)
class Plan:
    path: Path
    sha256: str
    output: Path
    judges: tuple[str, ...]  # `--judge` specs, NAME[:OPTIONS]
    benchmarks: dict[str, tuple[str, ...]]  # group -> lmms-eval task or group names
    models: tuple[ModelSpec, ...]
    env: dict[str, str] = field(default_factory=dict)  # set for every job (data roots)
    limits: Limits = field(default_factory=Limits)

    def groups_of(self, model: ModelSpec) -> tuple[str, ...]:
        return model.benchmarks if model.benchmarks is not None else tuple(self.benchmarks)


class _Strict:
    """Typed reads of one plan file; every error names the file and the key path."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, where: str, message: str) -> PlanError:
        return PlanError(f"{self.path}: {where}: {message}" if where else f"{self.path}: {message}")

    def mapping(self, value: Any, where: str, keys: Sequence[str] | None = None) -> Mapping[str, Any]:
        if not isinstance(value, Mapping):
            raise self.fail(where, f"expected a mapping, got {_shown(value)}")
        bad = [str(k) for k in value if not isinstance(k, str) or (keys is not None and k not in keys)]
        if bad:
            known = f"; known: {', '.join(keys)}" if keys is not None else ""
            raise self.fail(where, f"unknown key(s) {', '.join(map(repr, bad))}{known}")
        return value

    def text(self, value: Any, where: str, pattern: re.Pattern[str] | None = None) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.fail(where, f"expected a non-empty string, got {_shown(value)}")
        if pattern is not None and not pattern.match(value):
            raise self.fail(where, f"{value!r} must match {pattern.pattern}")
        return value

    def whole(self, value: Any, where: str, low: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise self.fail(where, f"expected a whole number >= {low}, got {_shown(value)}")
        return value

    def number(self, value: Any, where: str, low: float, high: float | None = None) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(where, f"expected a number, got {_shown(value)}")
        if value < low or (high is not None and value > high):
            span = f"between {low:g} and {high:g}" if high is not None else f">= {low:g}"
            raise self.fail(where, f"expected a number {span}, got {value!r}")
        return float(value)

    def names(self, value: Any, where: str) -> tuple[str, ...]:
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list) or not items:
            raise self.fail(where, f"expected a name or a non-empty list of names, got {_shown(value)}")
        return tuple(self.text(v, f"{where}[{i}]") for i, v in enumerate(items))

    def args(self, value: Any, where: str) -> tuple[tuple[str, str], ...]:
        """`key=value,...` (as lmms-eval takes it) or a mapping; values are scalars or JSON objects."""
        if value is None:
            return ()
        raw: list[tuple[str, str | None]] = []
        if isinstance(value, str):
            for part in split_args(value):
                if "=" not in part:
                    raise self.fail(where, f"{part!r} is not key=value")
                name, text = part.split("=", 1)
                raw.append((name.strip(), text.strip()))
        else:
            raw = [(k, _arg_text(v)) for k, v in self.mapping(value, where).items()]
        pairs: list[tuple[str, str]] = []
        for k, maybe in raw:
            if not ENV_NAME.match(k):
                raise self.fail(where, f"{k!r} is not an argument name")
            if maybe is None:
                raise self.fail(f"{where}.{k}", "expected a string, number, boolean or mapping")
            pairs.append((k, maybe))
            # refused wherever a run record would mask it: a masked argument never matches the plan
            if (SECRET_NAME.search(k) or secret_arg(k)) and not k.lower().endswith("_env"):
                raise self.fail(
                    f"{where}.{k}",
                    "a secret does not belong in a plan (it would be logged): keep it in the "
                    "environment and name the variable (e.g. api_key_env=)",
                )
            if url_secrets(maybe):
                raise self.fail(
                    f"{where}.{k}",
                    "credentials in a URL do not belong in a plan (they would be logged): "
                    "keep them in the environment",
                )
        return tuple(pairs)


def _shown(value: Any) -> str:
    return f"{type(value).__name__} {value!r}" if value is not None else "nothing"


def _arg_text(value: Any) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | str):
        return str(value)
    if isinstance(value, Mapping):
        return json.dumps(value, separators=(",", ":"))
    return None


def split_args(text: str) -> list[str]:
    """`a=1,b={"x":1,"y":2}` -> parts, commas inside braces, brackets or quotes kept (as lmms-eval)."""
    parts: list[str] = []
    cur: list[str] = []
    depth, quote = 0, ""
    for ch in text:
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch in "{[":
            depth += 1
        elif ch in "}]":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append("".join(cur).strip())
            cur = []
            continue
        cur.append(ch)
    parts.append("".join(cur).strip())
    return [p for p in parts if p]


def _judge(r: _Strict, value: Any, where: str) -> str:
    """A judge as `--judge` takes it: "NAME[:OPTIONS]" or {name: NAME, options: {...}}."""
    from judges.registry import list_judges, parse_options

    if isinstance(value, str):
        name, _, options = value.partition(":")
    else:
        raw = r.mapping(value, where, ("name", "options"))
        name = r.text(raw.get("name"), f"{where}.name")
        opts = r.args(raw.get("options"), f"{where}.options")
        options = ",".join(f"{k}={v}" for k, v in opts)
    name = name.strip()
    if name not in list_judges():
        raise r.fail(where, f"unknown judge {name!r}; known: {', '.join(list_judges())}")
    try:
        parsed = parse_options(options)
    except ValueError as e:
        raise r.fail(where, str(e)) from None
    r.args(",".join(f"{k}={v}" for k, v in parsed.items()), where)  # no secrets in options either
    return f"{name}:{options}" if options else name


def _model(r: _Strict, value: Any, where: str, groups: Mapping[str, Any], known: set[str]) -> ModelSpec:
    raw = r.mapping(value, where, MODEL_KEYS)
    for key in ("id", "model"):
        if key not in raw:
            raise r.fail(where, f"missing key {key!r}")
    model = r.text(raw["model"], f"{where}.model")
    if known and model not in known:
        raise r.fail(f"{where}.model", f"unknown lmms-eval model {model!r} (see lmms-eval's model list)")
    benchmarks = None
    if "benchmarks" in raw:
        benchmarks = r.names(raw["benchmarks"], f"{where}.benchmarks")
        for i, g in enumerate(benchmarks):
            if g not in groups:
                raise r.fail(
                    f"{where}.benchmarks[{i}]", f"no benchmark group {g!r}; groups: {', '.join(groups)}"
                )
    batch = raw.get("batch_size")
    if batch is not None and not (
        (isinstance(batch, int) and not isinstance(batch, bool) and batch >= 1)
        or (isinstance(batch, str) and re.match(r"^(auto(:\d+)?|\d+)$", batch))
    ):
        raise r.fail(f"{where}.batch_size", f"expected a whole number >= 1 or 'auto', got {_shown(batch)}")
    extra = raw.get("lmms_eval_args", [])
    if not isinstance(extra, list) or not all(isinstance(a, str) for a in extra):
        raise r.fail(f"{where}.lmms_eval_args", f"expected a list of strings, got {_shown(extra)}")
    for a in extra:
        if a.split("=", 1)[0] in OWN_OPTIONS:
            raise r.fail(
                f"{where}.lmms_eval_args", f"{a.split('=', 1)[0]} is set by the sweep (use the plan's keys)"
            )
    cache = raw.get("cache", True)
    if not isinstance(cache, bool):
        raise r.fail(f"{where}.cache", f"expected true or false, got {_shown(cache)}")
    model_args = r.args(raw.get("model_args"), f"{where}.model_args")
    if any(k == "batch_size" for k, _ in model_args):  # lmms-eval passes its --batch_size as well
        raise r.fail(f"{where}.model_args.batch_size", "set the model's batch_size key instead")
    if any(k == "cache" for k, _ in model_args):
        raise r.fail(
            f"{where}.model_args.cache",
            "the sweep gives every job its own cache (set cache: false to opt out)",
        )
    return ModelSpec(
        id=r.text(raw["id"], f"{where}.id", ID),
        model=model,
        model_args=model_args,
        gpus=r.whole(raw.get("gpus", 1), f"{where}.gpus", 0),
        cpus=r.whole(raw.get("cpus", 1), f"{where}.cpus", 0),
        batch_size=None if batch is None else str(batch),
        gen_kwargs=r.args(raw.get("gen_kwargs"), f"{where}.gen_kwargs"),
        benchmarks=benchmarks,
        cache=cache,
        lmms_eval_args=tuple(extra),
    )


def _limits(r: _Strict, value: Any) -> Limits:
    raw = r.mapping(value or {}, "limits", LIMIT_KEYS)
    limit = raw.get("limit")
    if limit is not None:
        limit = (
            r.whole(limit, "limits.limit", 1)
            if isinstance(limit, int)
            else r.number(limit, "limits.limit", 0, 1)
        )
    timeout = raw.get("timeout_s")
    return Limits(
        limit=limit,
        max_unusable=r.number(raw.get("max_unusable", 0.05), "limits.max_unusable", 0, 1),
        timeout_s=None if timeout is None else r.number(timeout, "limits.timeout_s", 1),
        retries=r.whole(raw.get("retries", 0), "limits.retries", 0),
        judge_workers=r.whole(raw.get("judge_workers", 2), "limits.judge_workers", 1),
    )


def _unique_keys_loader() -> Any:
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    def mapping(loader: Any, node: Any, deep: bool = False) -> Any:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = loader.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return loader.construct_mapping(node, deep)

    Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, mapping)
    return Loader


def load_plan(path: Path | str, *, known_models: set[str] | None = None) -> Plan:
    """The plan at `path`, validated. `known_models`: lmms-eval's model names (None: look them up)."""
    import yaml

    path = Path(path)
    r = _Strict(path)
    try:
        text = path.read_text(encoding="utf-8")
        raw = yaml.load(text, Loader=_unique_keys_loader())  # noqa: S506 - a SafeLoader subclass
    except OSError as e:
        raise PlanError(f"{path}: cannot read the plan ({e.strerror or e})") from None
    except yaml.YAMLError as e:
        raise PlanError(f"{path}: not valid YAML ({e})") from None
    top = r.mapping(raw, "", TOP)
    for key in ("output", "judges", "benchmarks", "models"):
        if key not in top:
            raise r.fail("", f"missing key {key!r}")
    judges = top["judges"] if isinstance(top["judges"], list) else [top["judges"]]
    if not judges:
        raise r.fail("judges", "expected at least one judge")
    specs = tuple(_judge(r, j, f"judges[{i}]") for i, j in enumerate(judges))
    if len(set(specs)) != len(specs):
        raise r.fail("judges", "the same judge is listed twice")
    groups_raw = r.mapping(top["benchmarks"], "benchmarks")
    if not groups_raw:
        raise r.fail("benchmarks", "expected at least one benchmark group")
    groups = {}
    for name, tasks in groups_raw.items():
        r.text(name, f"benchmarks.{name}", ID)
        groups[name] = r.names(tasks, f"benchmarks.{name}")
    models_raw = top["models"]
    if not isinstance(models_raw, list) or not models_raw:
        raise r.fail("models", f"expected a non-empty list of models, got {_shown(models_raw)}")
    known = lmms_eval_models() if known_models is None else known_models
    models = tuple(_model(r, m, f"models[{i}]", groups, known) for i, m in enumerate(models_raw))
    seen: dict[str, int] = {}
    recorded: dict[str, int] = {}
    for i, m in enumerate(models):
        if m.id in seen:
            raise r.fail(f"models[{i}].id", f"{m.id!r} is already the id of models[{seen[m.id]}]")
        seen[m.id] = i
        if m.recorded_name() in recorded:
            raise r.fail(
                f"models[{i}].model_args",
                f"run records would name it {m.recorded_name()!r}, as models[{recorded[m.recorded_name()]}]: "
                "the leaderboard could not tell the two apart (give each its own checkpoint path)",
            )
        recorded[m.recorded_name()] = i
    env = {}
    for k, v in r.mapping(top.get("env") or {}, "env").items():
        if not ENV_NAME.match(k):
            raise r.fail(f"env.{k}", "not an environment variable name")
        if SECRET_NAME.search(k):
            raise r.fail(f"env.{k}", "a secret does not belong in a plan: set it in the environment")
        value = _arg_text(v)
        if value is None or isinstance(v, Mapping):
            raise r.fail(f"env.{k}", f"expected a string or number, got {_shown(v)}")
        env[k] = value
    return Plan(
        path=path,
        sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(),
        output=Path(r.text(top["output"], "output")),
        judges=specs,
        benchmarks=groups,
        models=models,
        env=env,
        limits=_limits(r, top.get("limits")),
    )


def lmms_eval_models() -> set[str]:
    """Every model name lmms-eval knows (its own, aliases, and mis-eval's through the entry point)."""
    from lmms_eval.models import list_available_models

    return set(list_available_models(include_aliases=True))
