"""`postwire accounts set-tracking-default ACCOUNT [--opens on|off] [--clicks on|off]`:
whether the account's emails get an open pixel / tracked links when their Send does not
say (docs/tracking.md). Delivery workers see the change within seconds (5 s cache)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from postwire_service.account_lookup import on_account


def cmd_set_tracking_default(args: argparse.Namespace) -> int:
    from core.tracking.defaults import TrackingDefaults

    if args.opens is None and args.clicks is None:
        print("error: give --opens on|off, --clicks on|off or both", file=sys.stderr)
        return 2
    opens = None if args.opens is None else args.opens == "on"
    clicks = None if args.clicks is None else args.clicks == "on"
    if not on_account(args.account, lambda engine, account_id: TrackingDefaults(engine).set(
            account_id, opens=opens, clicks=clicks)):
        print(f"error: no account named {args.account!r}", file=sys.stderr)
        return 1
    said = [f"{what} {value}" for what, value in (("opens", args.opens), ("clicks", args.clicks)) if value]
    print(f"account {args.account}: tracking by default: {', '.join(said)}")
    return 0


def register(accounts: Any) -> None:
    """Add `set-tracking-default` to `postwire accounts`."""
    default = accounts.add_parser(
        "set-tracking-default", help="open pixel / tracked links for Sends that do not set track_opens / track_clicks",
    )
    default.add_argument("account", help="account name (as given to `postwire keys create --account`)")
    default.add_argument("--opens", choices=["on", "off"], help="the open pixel by default")
    default.add_argument("--clicks", choices=["on", "off"], help="tracked links by default")
    default.set_defaults(func=cmd_set_tracking_default)
