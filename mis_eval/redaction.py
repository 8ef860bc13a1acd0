"""Secrets out of everything `mis-eval run` passes through from lmms-eval (stdout and stderr).

lmms-eval prints its arguments (model_args included) and whatever its models log; a key given
as `--model_args api_key=...` or present in the environment must not reach a terminal, a CI log
or a pasted bug report. The child's output is read as it comes, cut at line ends and carriage
returns (so progress bars still move), and every piece is redacted before it is written on.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Mapping, Sequence
from typing import IO

from mis_eval.core.secrets import MASK, MIN_SECRET, SECRET_NAME, Scrubber, arg_secrets, env_secrets

# name=value pairs whose name says secret (model_args, URLs, printed dicts): the value is masked
_PAIR = re.compile(
    r"(?i)\b([\w.-]*(?:api[_-]?key|token|secret|password|passwd|credential)[\w.-]*"
    r"['\"]?\s*[=:]\s*['\"]?)([^\s,'\"&)}\]]+)"
)
_PATTERNS = (
    re.compile(r"\bsk-[A-Za-z0-9_\-]{8,}"),  # OpenAI-style keys
    re.compile(r"\bhf_[A-Za-z0-9]{16,}"),  # Hugging Face tokens
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9_\-.=]{8,}"),
)


def secret_values(argv: Sequence[str], env: Mapping[str, str]) -> list[str]:
    """Values to mask: `name=value` parts of arguments and `--name value` pairs whose name says
    secret, credentials inside URLs, and environment variables whose name says secret
    (OPENAI_API_KEY, HF_TOKEN, ...)."""
    found: set[str] = set()
    args = list(argv)
    for i, arg in enumerate(args):
        for part in arg.split(","):
            name, eq, value = part.partition("=")
            if eq and SECRET_NAME.search(name):
                found.add(value)
        found.update(arg_secrets(arg))  # credentials inside URLs too
        if arg.startswith("--") and "=" not in arg and SECRET_NAME.search(arg) and i + 1 < len(args):
            found.add(args[i + 1])
    found |= set(env_secrets(env))
    return sorted((v for v in found if len(v) >= MIN_SECRET or v.endswith("@")), key=len, reverse=True)


class Redactor:
    """Known values (a Scrubber), then anything that looks like a secret in free text."""

    def __init__(self, secrets: Sequence[str] = ()) -> None:
        self.secrets = [s for s in secrets if len(s) >= MIN_SECRET or s.endswith("@")]
        self._known = Scrubber(self.secrets)

    def __call__(self, text: str) -> str:
        text = self._known(text)
        text = _PAIR.sub(lambda m: m.group(1) + MASK, text)
        text = _PATTERNS[0].sub(MASK, text)
        text = _PATTERNS[1].sub(MASK, text)
        return _PATTERNS[2].sub(lambda m: m.group(1) + MASK, text)


_CUT = re.compile(rb"[^\r\n]*[\r\n]+")


def pump(src: IO[bytes], dst: IO[str], redact: Redactor) -> None:
    """Copy src to dst as it arrives, redacting each line (pieces end at \\n or \\r)."""
    pending = b""
    while chunk := os.read(src.fileno(), 65536):
        pending += chunk
        end = 0
        for m in _CUT.finditer(pending):
            end = m.end()
        if end:
            dst.write(redact(pending[:end].decode("utf-8", "replace")))
            dst.flush()
            pending = pending[end:]
    if pending:
        dst.write(redact(pending.decode("utf-8", "replace")))
        dst.flush()


def start_pumps(pairs: Sequence[tuple[IO[bytes], IO[str]]], redact: Redactor) -> list[threading.Thread]:
    threads = [threading.Thread(target=pump, args=(s, d, redact), daemon=True) for s, d in pairs]
    for t in threads:
        t.start()
    return threads
