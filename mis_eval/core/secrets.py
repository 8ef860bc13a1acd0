"""The run's own secrets, found where they live, and masked in whatever text would be stored or shown.

A secret can come back from anywhere: a server that quotes the request's key in its reply, a
base URL with credentials in an error message, `api_key=` in lmms-eval's recorded model args.
So masking goes by value, over everything written, not by where a value came from. Values are
only ever the run's own: API keys read from the environment (variables whose names say key,
token, secret, password, ...), credentials and secret-named query values inside URLs, and
`name=value` arguments whose name says secret.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

SECRET_NAME = re.compile(r"(?i)(api[_-]?key|key|token|secret|password|passwd|auth|credential)")
MASK = "***"
# an argument whose name is a secret word on its own (api_key, hf_token, password), not one that
# only contains it (max_new_tokens, max_tokens_param, keyword): those are settings worth recording
SECRET_ARG = re.compile(
    r"(?i)(?:^|[_.-])"
    r"(?:api[_-]?key|apikey|key|token|secret|password|passwd|pwd|credentials?|auth|sig|signature)"
    r"(?:$|[_.-])"
)
MIN_SECRET = 6  # shorter values would mask ordinary words
# names that say where a secret is (a file, a variable name), not the secret itself
_PLACE_NAME = re.compile(r"(?i)_(path|file|dir|home|sock|env)$")
_USERINFO = re.compile(r"(?:^|//)([^/?#@\s]+)@")


def env_secrets(env: Mapping[str, str] | None = None) -> list[str]:
    """Values of environment variables whose names say secret (OPENAI_API_KEY, HF_TOKEN, ...).

    Not file paths (SSH_AUTH_SOCK, HF_TOKEN_PATH): masking them would only garble stored paths.
    """
    env = os.environ if env is None else env
    return [
        v
        for k, v in env.items()
        if SECRET_NAME.search(k) and not _PLACE_NAME.search(k) and len(v) >= MIN_SECRET and v[0] not in "/~"
    ]


def url_secrets(url: str) -> list[str]:
    """Credentials in a URL (`user:pass@`, with or without a scheme) and secret-named query values."""
    found: list[str] = []
    for m in _USERINFO.finditer(url):
        info = m.group(1)
        found.append(info + "@")  # the whole userinfo, however short, with its @
        found += [part for part in info.split(":", 1) if len(part) >= MIN_SECRET]
    query = urlsplit(url).query if "?" in url else ""
    found += [v for k, v in parse_qsl(query) if secret_arg(k) and len(v) >= MIN_SECRET]
    return found


def arg_secrets(args: str) -> list[str]:
    """Secret values in an lmms-eval style `a=1,api_key=...,base_url=...` argument string."""
    found: list[str] = []
    for part in args.split(","):
        name, eq, value = part.partition("=")
        if eq and secret_arg(name) and len(value.strip()) >= MIN_SECRET:
            found.append(value.strip())
        found += url_secrets(value if eq else part)
    return found


def secret_arg(name: str) -> bool:
    """Whether an argument of this name holds a secret (its value is masked in run records)."""
    name = name.strip()
    return bool(SECRET_ARG.search(name)) and not _PLACE_NAME.search(name)


def redact_args(args: str) -> str:
    """`a=1,api_key=sk-..,base_url=http://u:p@h/v1` -> `a=1,api_key=***,base_url=http://***@h/v1`.

    Values of secret-named arguments are masked whatever their length; an `..._env` argument names
    a variable, not a secret, and stays.
    """
    parts = []
    for part in (args or "").split(","):
        name, eq, value = part.partition("=")
        if eq and secret_arg(name):
            parts.append(f"{name}={MASK}")
        else:
            parts.append(Scrubber(url_secrets(part))(part))
    return ",".join(parts)


def run_secrets(model_args: str = "", key_envs: Iterable[str] = ()) -> Scrubber:
    """Every secret of a run: secret-looking environment values, the values of the variables a
    judge or model reads its key from (`api_key_env=`, whatever they are called), and secrets in
    the model args (`api_key=`, credentials in URLs)."""
    envs = {*key_envs, *re.findall(r"(?:^|,)\s*api_key_env=([^,\s]+)", model_args or "")}
    named = [os.environ.get(e, "") for e in envs]
    return Scrubber([*env_secrets(), *(v for v in named if len(v) >= 4), *arg_secrets(model_args or "")])


def public_url(url: str) -> str:
    """The URL without credentials, query or fragment (safe to record and show)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:  # a malformed port or host
        parts, port = None, None
    if parts is None or not parts.netloc:  # not a URL urlsplit understands: strip by hand
        bare = _USERINFO.sub(lambda m: m.group(0)[: m.start(1) - m.start(0)], url)
        return re.split(r"[?#]", bare, maxsplit=1)[0]
    host = parts.hostname or ""
    netloc = f"{host}:{port}" if port else host
    return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))


class Scrubber:
    """Masks known secret values in text, and in every string of a JSON-like structure."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        # longest first: a key that contains another is masked whole
        self.secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def __bool__(self) -> bool:
        return bool(self.secrets)

    def __call__(self, text: str) -> str:
        for s in self.secrets:
            if s in text:
                text = text.replace(s, MASK if not s.endswith("@") else MASK + "@")
        return text

    def deep(self, obj: Any) -> Any:
        """The structure with every string (keys too) masked; numbers and the rest unchanged."""
        if not self.secrets:
            return obj
        if isinstance(obj, str):
            return self(obj)
        if isinstance(obj, Mapping):
            return {self.deep(k): self.deep(v) for k, v in obj.items()}
        if isinstance(obj, list | tuple):
            return [self.deep(v) for v in obj]
        return obj
