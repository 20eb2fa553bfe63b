"""`postwire accounts ...`: account settings an operator changes.

    postwire accounts set-unsubscribe-default ACCOUNT on|off

`on`: Sends that do not set `unsubscribe` get the one-click unsubscribe headers
(RFC 8058) when they have a single recipient. Servers see the change within seconds
(they cache the setting per account for 5 s)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from postwire_service import tracking_commands
from postwire_service.account_lookup import on_account


def cmd_set_unsubscribe_default(args: argparse.Namespace) -> int:
    from core.returns.unsubscribe import AccountDefaults

    on = args.value == "on"
    if not on_account(args.account, lambda engine, account_id: AccountDefaults(engine).set(account_id, on)):
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
