"""How settings are shown (`postwire config`, logs): secrets and URL passwords masked."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, SecretStr

MASK = "********"
NOT_SET = "(not set)"
# A string setting with such a name holds a credential even if typed as a plain str.
_SECRET_NAME = re.compile(r"secret|password|passwd|token|key|credential")


def is_secret(name: str, value: Any) -> bool:
    """Whether a setting must never be shown: a SecretStr, or a string with a credential-like
    name (numbers such as max_streams_per_key or webhook_secret_overlap_seconds are shown)."""
    return isinstance(value, SecretStr) or (isinstance(value, str) and bool(_SECRET_NAME.search(name)))


def mask_url(url: str) -> str:
    """The URL with the password of its user-info (if any) replaced by MASK."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:{MASK}@{host}"))


def shown(name: str, value: Any) -> Any:
    """A JSON-ready value with secrets masked (set: MASK; empty: NOT_SET)."""
    if is_secret(name, value):
        raw = value.get_secret_value() if isinstance(value, SecretStr) else value
        return MASK if raw else NOT_SET
    if isinstance(value, BaseModel):
        return {field: shown(field, getattr(value, field)) for field in type(value).model_fields}
    if isinstance(value, list):
        return [shown(name, item) for item in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, str) and name.endswith(("_url", "_endpoint")):
        return mask_url(value)
    return value


def as_environment(settings: BaseModel) -> dict[str, str]:
    """Every field as POSTWIRE_<NAME> -> its value spelled as in the environment (JSON for
    lists, true/false), secrets and URL passwords masked."""
    out = {}
    for name in type(settings).model_fields:
        value = shown(name, getattr(settings, name))
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, (list, dict)):
            text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
        else:
            text = str(value)
        out[f"POSTWIRE_{name.upper()}"] = text
    return out
