"""`postwire accounts ...`: account settings an operator changes.

    postwire accounts set-unsubscribe-default ACCOUNT on|off

`on`: Sends that do not set `unsubscribe` get the one-click unsubscribe headers
(RFC 8058) when they have a single recipient. Servers see the change within seconds
(they cache the setting per account for 5 s)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from postwire_service import tracking_commands


def cmd_set_unsubscribe_default(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from core.returns.unsubscribe import AccountDefaults
    from core.settings import Settings
    from core.storage.db import accounts, make_engine

    settings = Settings()
    on = args.value == "on"

    async def run() -> int | None:
        engine = make_engine(settings.database_url)
        try:
            async with engine.connect() as conn:
                found = await conn.scalar(
                    select(accounts.c.id).where(accounts.c.name == args.account).order_by(accounts.c.id)
                )
            if found is None:
                return None
            await AccountDefaults(engine).set(int(found), on)
            return int(found)
        finally:
            await engine.dispose()

    if asyncio.run(run()) is None:
        print(f"error: no account named {args.account!r}", file=sys.stderr)
        return 1
    print(f"account {args.account}: unsubscribe headers by default {args.value}")
    return 0


def register(sub: Any) -> None:
    """Add `postwire accounts ...` to the `postwire` command's subparsers."""
    accounts = sub.add_parser("accounts", help="account settings").add_subparsers(dest="accounts_command", required=True)
    default = accounts.add_parser(
        "set-unsubscribe-default",
        help="add one-click unsubscribe headers to single-recipient Sends that do not say (on) or not (off)",
    )
    default.add_argument("account", help="account name (as given to `postwire keys create --account`)")
    default.add_argument("value", choices=["on", "off"])
    default.set_defaults(func=cmd_set_unsubscribe_default)
    tracking_commands.register(accounts)  # postwire accounts set-tracking-default
