"""Reading a server's Retry-After, shared by the judge client and the API model adapter."""

from __future__ import annotations

import email.utils
import time
from typing import Any


def retry_after(headers: Any) -> float | None:
    """Seconds the server asks us to wait: retry-after-ms, or Retry-After in seconds or as an HTTP date.

    None when there is no usable header (a garbled value must not crash the retry loop).
    """
    if not headers:
        return None
    try:
        if (ms := headers.get("retry-after-ms")) is not None:
            try:
                return max(0.0, float(ms) / 1000)
            except ValueError:
                pass  # fall back to Retry-After
        value = headers.get("retry-after")
        if value is None:
            return None
        try:
            return max(0.0, float(value))
        except ValueError:
            return max(0.0, email.utils.parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None
