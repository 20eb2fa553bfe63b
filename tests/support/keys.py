"""API keys for tests, made in this process: `postwire keys create`'s own parser and
work (postwire_service.cli.key_creator, on_keys), without a new Python process, which
costs 0.8 s a key (imports) when the suite makes a few hundred. The command itself is
tested through the CLI (tests/conftest.py's stack keys, test_keys_and_limits)."""

from __future__ import annotations

import asyncio
import functools
import secrets
from concurrent.futures import ThreadPoolExecutor

from postwire_client.cli import build_parser
from postwire_service.cli import key_creator, on_keys

_THREAD = ThreadPoolExecutor(1, thread_name_prefix="test-keys")  # asyncio.run off any running loop
_parser = functools.cache(build_parser)


def make_key(env: dict[str, str], account: str, *flags: str, name: str | None = None) -> str:
    """A new key of `account` (created if missing) on the stack whose environment is
    `env`; `flags` as `postwire keys create` takes them (--scope, --kind, --send-per-minute...)."""
    args = _parser().parse_args(["keys", "create", "--name", name or secrets.token_hex(3), "--account", account, *flags])
    work = on_keys(env["POSTWIRE_DATABASE_URL"], env["POSTWIRE_SECRET_KEY"], key_creator(args))
    return _THREAD.submit(asyncio.run, work).result()
