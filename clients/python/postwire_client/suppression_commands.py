"""The `postwire suppressions ...` commands: the account's suppression list.

    postwire suppressions list [--kind K] [--after T] [--before T] [--prefix P] [--limit N]
    postwire suppressions get ADDRESS
    postwire suppressions add ADDRESS... [--file PATH] [--reason TEXT]    (admin key)
    postwire suppressions remove ADDRESS... [--file PATH]                 (admin key)

`list` prints a table, newest first (`--json`: one entry per line, NDJSON); `add` and
`remove` print one line per address and exit 1 when any address failed (each failure
on stderr with its reason). `--file` reads addresses one per line (`-` for stdin),
sent in batches of 1,000. Call errors are printed by `main()` in cli.py.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from postwire.v1 import suppression_pb2
from postwire.v1 import suppression_service_pb2 as spb
from postwire_client.domain_commands import table
from postwire_client.formatting import _time, to_json
from postwire_client.suppressions import MAX_BATCH, suppression_kind

if TYPE_CHECKING:
    from postwire_client.sdk import Client


def kind_name(kind: int) -> str:
    try:
        return str(suppression_pb2.SuppressionKind.Name(kind)).removeprefix("SUPPRESSION_KIND_").lower()
    except ValueError:
        return str(kind)


def entries_lines(entries: Iterable[suppression_pb2.Suppression]) -> list[str]:
    """One row per entry: address, kind, when, the email behind it, the reason."""
    rows = [["ADDRESS", "KIND", "CREATED", "MESSAGE", "REASON"]]
    rows += [[e.address, kind_name(e.kind), _time(e.created_at), e.message_id or "-", " ".join(e.reason.split()) or "-"]
             for e in entries]
    if len(rows) == 1:
        return ["no suppressed addresses"]
    return table(rows)


def _when(value: str | None, flag: str) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise SystemExit(f"error: {flag}: not an ISO 8601 time such as 2026-12-01T09:00:00+00:00") from None
    if parsed.tzinfo is None:
        raise SystemExit(f"error: {flag}: give a UTC offset, as in 2026-12-01T09:00:00+00:00")
    return parsed


def _addresses(args: argparse.Namespace) -> list[str]:
    found = list(args.addresses)
    if args.file:
        text = sys.stdin.read() if args.file == "-" else Path(args.file).read_text()
        found += [line.strip() for line in text.splitlines() if line.strip()]
    if not found:
        raise SystemExit("error: give at least one address (or --file)")
    return found


def _client(args: argparse.Namespace) -> Client:
    return args.make_client(args)  # set by add_suppression_commands


def cmd_list(args: argparse.Namespace) -> int:
    try:
        kind = suppression_kind(args.kind)
    except ValueError as exc:
        raise SystemExit(f"error: --kind: {exc}") from None
    filters = {"kind": kind, "created_after": _when(args.after, "--after"),
               "created_before": _when(args.before, "--before"), "address_prefix": args.prefix or ""}
    entries: list[suppression_pb2.Suppression] = []
    with _client(args) as client:
        for entry in client.iter_suppressions(**filters, page_size=min(args.limit or MAX_BATCH, MAX_BATCH)):
            entries.append(entry)
            if args.limit and len(entries) >= args.limit:
                break
    if args.json:
        for entry in entries:
            print(to_json(entry))
    else:
        print("\n".join(entries_lines(entries)))
    return 0


def cmd_get(args: argparse.Namespace) -> int:
    with _client(args) as client:
        entry = client.get_suppression(args.email).suppression
    print(to_json(entry) if args.json else "\n".join(entries_lines([entry])))
    return 0


def _report(results: Iterable[spb.SuppressionResult], done: Callable[[spb.SuppressionResult], str], json: bool) -> int:
    failed = 0
    for r in results:
        if json:
            print(to_json(r))
        elif r.HasField("error"):
            print(f"{r.address}  failed  {r.error.message}")
        else:
            print(f"{r.address}  {done(r)}")
        if r.HasField("error"):
            failed += 1
    if failed:
        print(f"error: {failed} address{'es' if failed > 1 else ''} failed; the others were done", file=sys.stderr)
    return 1 if failed else 0


def cmd_add(args: argparse.Namespace) -> int:
    addresses = _addresses(args)
    results: list[spb.SuppressionResult] = []
    with _client(args) as client:
        for start in range(0, len(addresses), MAX_BATCH):
            results += client.add_suppressions(addresses[start : start + MAX_BATCH], reason=args.reason).results
    return _report(results, lambda r: "added" if r.created else f"already suppressed ({kind_name(r.suppression.kind)})",
                   args.json)


def cmd_remove(args: argparse.Namespace) -> int:
    addresses = _addresses(args)
    results: list[spb.SuppressionResult] = []
    with _client(args) as client:
        for start in range(0, len(addresses), MAX_BATCH):
            results += client.remove_suppressions(addresses[start : start + MAX_BATCH]).results
    return _report(results, lambda r: "removed: mail to it is sent again", args.json)


def add_suppression_commands(sub: Any, client_flags: Callable[[argparse.ArgumentParser], argparse.ArgumentParser],
                             make_client: Callable[[argparse.Namespace], Client]) -> None:
    """`suppressions` (list, get, add, remove), added to the `postwire` parser."""
    parser = sub.add_parser("suppressions", help="the addresses Postwire will not send to (changes need an admin key)")
    actions = parser.add_subparsers(dest="suppressions_command", required=True, metavar="ACTION")

    def action(name: str, help: str, func: Callable[[argparse.Namespace], int]) -> argparse.ArgumentParser:
        p = client_flags(actions.add_parser(name, help=help))
        p.add_argument("--json", action="store_true", help="JSON, one object per line")
        p.set_defaults(func=func, make_client=make_client)
        return p

    listing = action("list", "list suppressed addresses, newest first", cmd_list)
    listing.add_argument("--kind", help="hard_bounce, complaint, unsubscribe or manual")
    listing.add_argument("--after", metavar="TIME", help="added after this ISO 8601 time")
    listing.add_argument("--before", metavar="TIME", help="added before this ISO 8601 time")
    listing.add_argument("--prefix", help="addresses starting with this")
    listing.add_argument("--limit", type=int, default=0, metavar="N", help="at most N entries (default: all)")
    get = action("get", "show one address's entry", cmd_get)
    get.add_argument("email", metavar="ADDRESS")  # not "address": that is --address, the server
    for name, help, func in (("add", "suppress addresses by hand", cmd_add),
                             ("remove", "take addresses off the list", cmd_remove)):
        p = action(name, help, func)
        p.add_argument("addresses", nargs="*", metavar="ADDRESS")
        p.add_argument("--file", metavar="PATH", help="more addresses, one per line (- for stdin)")
        if name == "add":
            p.add_argument("--reason", default="", help="why, for your records")
