"""The `postwire emails list` command: the account's emails, newest first, filtered.

    postwire emails list [--status S]... [--to ADDRESS] [--from ADDRESS] [--tag T]...
                         [--meta KEY=VALUE]... [--template ID] [--after T] [--before T] [--limit N]

Prints a table (`--json`: one EmailSummary per line, NDJSON). Every filter is
optional and they combine with AND; `--status` may repeat (any of them), `--tag` and
`--meta` too (all of them). `--limit` defaults to 50; 0 lists every match. Call errors
are printed by `main()` in cli.py.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from postwire.v1 import email_pb2
from postwire.v1 import email_service_pb2 as pb
from postwire_client.domain_commands import table
from postwire_client.email_search import email_status
from postwire_client.formatting import _time, to_json
from postwire_client.suppression_commands import _when

if TYPE_CHECKING:
    from postwire_client.sdk import Client

MAX_PAGE = 1000


def emails_lines(found: Iterable[pb.EmailSummary]) -> list[str]:
    """One row per email: id, status, when, sender, recipients, tags, subject."""
    rows = [["MESSAGE", "STATUS", "CREATED", "FROM", "TO", "TAGS", "SUBJECT"]]
    rows += [[e.message_id, email_pb2.EmailStatus.Name(e.status).removeprefix("EMAIL_STATUS_").lower(),
              _time(e.created_at), e.from_address or "-", ", ".join([*e.to, *e.cc]) or "-", ",".join(e.tags) or "-",
              " ".join(e.subject.split())[:60] or "-"] for e in found]
    if len(rows) == 1:
        return ["no emails match"]
    return table(rows)


def cmd_list(args: argparse.Namespace) -> int:
    try:
        statuses = [email_status(s) for s in args.status]
    except ValueError as exc:
        raise SystemExit(f"error: --status: {exc}") from None
    for pair in args.meta:
        if "=" not in pair or pair.startswith("="):
            raise SystemExit(f"error: --meta: {pair!r} is not KEY=VALUE")
    filters = {"status": statuses, "recipient": args.to or "", "from_address": args.from_address or "",
               "tag": args.tag, "metadata": args.meta, "template_id": args.template or "",
               "created_after": _when(args.after, "--after"), "created_before": _when(args.before, "--before")}
    found: list[pb.EmailSummary] = []
    with args.make_client(args) as client:
        for email in client.iter_emails(**filters, page_size=min(args.limit or MAX_PAGE, MAX_PAGE)):
            found.append(email)
            if args.limit and len(found) >= args.limit:
                break
    if args.json:
        for email in found:
            print(to_json(email))
    else:
        print("\n".join(emails_lines(found)))
    return 0


def add_email_commands(sub: Any, client_flags: Callable[[argparse.ArgumentParser], argparse.ArgumentParser],
                       make_client: Callable[[argparse.Namespace], Client]) -> None:
    """`emails list`, added to the `postwire` parser."""
    parser = sub.add_parser("emails", help="search the account's emails")
    actions = parser.add_subparsers(dest="emails_command", required=True, metavar="ACTION")
    listing = client_flags(actions.add_parser("list", help="list emails, newest first"))
    listing.add_argument("--json", action="store_true", help="JSON, one object per line")
    listing.add_argument("--status", action="append", default=[], help="e.g. bounced, sent (repeat: any of them)")
    listing.add_argument("--to", metavar="ADDRESS", help="a recipient (to, cc or bcc)")
    listing.add_argument("--from", dest="from_address", metavar="ADDRESS", help="the sender")
    listing.add_argument("--tag", action="append", default=[], help="carrying this tag (repeat: all of them)")
    listing.add_argument("--meta", action="append", default=[], metavar="KEY=VALUE",
                         help="with this metadata pair (repeat: all of them)")
    listing.add_argument("--template", metavar="ID", help="rendered from this template")
    listing.add_argument("--after", metavar="TIME", help="accepted at or after this ISO 8601 time")
    listing.add_argument("--before", metavar="TIME", help="accepted before this ISO 8601 time")
    listing.add_argument("--limit", type=int, default=50, metavar="N", help="at most N emails (default 50; 0: all)")
    listing.set_defaults(func=cmd_list, make_client=make_client)
