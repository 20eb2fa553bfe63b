"""API keys for tests, made in this process: `postwire keys create` parses the same
flags into the same KeyOptions and writes through the same KeyManager, but a new Python
process costs 0.8 s a key (imports), and the suite makes a few hundred. The command
itself is tested through the CLI (tests/conftest.py's stack keys, test_keys_and_limits)."""

from __future__ import annotations

import asyncio
import secrets
from concurrent.futures import ThreadPoolExecutor

from core.keys.manager import KeyManager
from core.keys.store import KeyStore
from core.storage.db import make_engine
from postwire_client.cli import build_parser
from postwire_service.cli import key_options

_THREAD = ThreadPoolExecutor(1, thread_name_prefix="test-keys")  # asyncio.run off any running loop


def make_key(env: dict[str, str], account: str, *flags: str, name: str | None = None) -> str:
    """A new key of `account` (created if missing) on the stack whose environment is
    `env`; `flags` as `postwire keys create` takes them (--scope, --kind, --send-per-minute...)."""
    args = build_parser().parse_args(
        ["keys", "create", "--name", name or secrets.token_hex(3), "--account", account, *flags]
    )
    options = key_options(args)

    async def create() -> str:
        store = KeyStore(make_engine(env["POSTWIRE_DATABASE_URL"]))
        try:
            keys = KeyManager(store, env["POSTWIRE_SECRET_KEY"])
            _, secret = await keys.create(await store.find_or_create_account(account), options)
            return str(secret)
        finally:
            await store.close()

    return _THREAD.submit(asyncio.run, create()).result()
