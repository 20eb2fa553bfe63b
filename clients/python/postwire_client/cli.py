"""The `postwire` command. Its client commands, here: send (one, `--count N` copies, or a
`--batch` of many), status, cancel, events; and, in postwire_client.domain_commands,
domains (create, list, get, verify, delete, rotate-key) and validate; in
suppression_commands, suppressions (list, get, add, remove); in template_commands,
templates (create, update, get, list, delete, versions, activate, render); in
stats_commands, stats. They connect to POSTWIRE_ADDRESS with
POSTWIRE_API_KEY (or --address / --api-key), falling back to the embedded mode's
.postwire/dev-api-key.

Output: `send` prints message ids on stdout (one per request, in input order);
`status` and `events` print readable lines, or JSON with `--json` (`events --json` is
NDJSON, one event per line). Long sends report progress on stderr.

Where the service is installed too, its operator commands (dev, server, worker,
scheduler, migrate, keys, prune, config, check) join in through the entry point group
`postwire.commands`; this package never imports the service.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Any

from google.protobuf import json_format

from postwire.v1 import event_pb2
from postwire_client.batch import batch_requests, send_many, stream_many
from postwire_client.domain_commands import add_domain_commands
from postwire_client.email_commands import add_email_commands
from postwire_client.formatting import event_line, status_text, to_json
from postwire_client.progress import Progress
from postwire_client.send_flags import base_request
from postwire_client.stats_commands import add_stats_commands
from postwire_client.suppression_commands import add_suppression_commands
from postwire_client.template_commands import add_send_template_flags, add_template_commands

if TYPE_CHECKING:
    from postwire_client.aio import AsyncClient
    from postwire_client.sdk import Client

COMMANDS_GROUP = "postwire.commands"  # entry points: callables that add subcommands


@dataclass(frozen=True)
class ClientSettings:
    """Where the client commands connect, and with which key (POSTWIRE_ADDRESS,
    POSTWIRE_API_KEY)."""

    address: str = "127.0.0.1:50051"
    api_key: str = ""

    @classmethod
    def from_env(cls) -> ClientSettings:
        return cls(
            address=os.environ.get("POSTWIRE_ADDRESS") or cls.address,
            api_key=os.environ.get("POSTWIRE_API_KEY", ""),
        )


def _target(args: argparse.Namespace) -> tuple[str, str]:
    settings = ClientSettings.from_env()
    key = args.api_key or settings.api_key
    dev_key = Path(".postwire/dev-api-key")
    if not key and dev_key.exists():
        key = dev_key.read_text().strip()
    return args.address or settings.address, key


def make_client(args: argparse.Namespace) -> Client:
    from postwire_client.sdk import Client

    return Client(*_target(args))


def make_async_client(args: argparse.Namespace) -> AsyncClient:
    from postwire_client.aio import AsyncClient

    return AsyncClient(*_target(args))



def cmd_send(args: argparse.Namespace) -> int:
    base = base_request(args)
    if args.batch:
        text = sys.stdin.read() if args.batch == "-" else Path(args.batch).read_text()
        requests = batch_requests(base, text.splitlines(), args.idempotency_key or "")
    else:
        if not args.from_address:
            raise SystemExit("error: --from is required (or give --batch with from_address in each line)")
        if args.count < 1:
            raise SystemExit("error: --count must be at least 1")
        requests = []
        for n in range(args.count):
            request = type(base)()
            request.CopyFrom(base)
            if args.idempotency_key:
                request.idempotency_key = args.idempotency_key if args.count == 1 else f"{args.idempotency_key}-{n + 1}"
            requests.append(request)
    if len(requests) == 1 and not args.batch:
        with make_client(args) as client:
            print(client.send(requests[0]).message_id)
        return 0
    progress = Progress(len(requests), sys.stderr, enabled=not args.no_progress)

    async def run() -> int:
        async with make_async_client(args) as client:
            if args.batch:
                return await stream_many(client, requests, progress)
            return await send_many(client, requests, args.concurrency, progress)

    return asyncio.run(run())


def cmd_status(args: argparse.Namespace) -> int:
    with make_client(args) as client:
        response = client.get_status(args.message_id)
    if args.json:
        print(json_format.MessageToJson(response, preserving_proto_field_name=True))
    else:
        print(status_text(response))
    return 0


def cmd_cancel(args: argparse.Namespace) -> int:
    with make_client(args) as client:
        response = client.cancel_scheduled(args.message_id)
    print(json_format.MessageToJson(response, preserving_proto_field_name=True))
    return 0


def event_types(names: list[str]) -> list[int]:
    try:
        return [event_pb2.EventType.Value(n if n.startswith("EVENT_TYPE_") else f"EVENT_TYPE_{n.upper()}")
                for n in names]
    except ValueError as exc:
        raise SystemExit(f"error: --type: {exc}") from None


def cmd_events(args: argparse.Namespace) -> int:
    show: Callable[[event_pb2.Event], str] = to_json if args.json else event_line
    filters = {"message_ids": args.message_id, "types": event_types(args.type), "tags": args.tag,
               "from_now": args.from_now}
    with make_client(args) as client:
        if args.follow:  # resumes by cursor after disconnects and server restarts
            events = client.follow_events(after=args.after or "", **filters)
        else:
            events = client.stream_events(after=args.after or "", idle_timeout=args.idle_timeout, **filters)
        try:
            for event in events:
                print(show(event), flush=True)
        except KeyboardInterrupt:
            pass
    return 0


def add_commands(sub: Any) -> None:
    """The client subcommands, added to the `postwire` parser's subparsers."""

    def client_flags(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--address", default="", help="gRPC address (POSTWIRE_ADDRESS)")
        p.add_argument("--api-key", default="", help="API key (POSTWIRE_API_KEY)")
        return p

    send = client_flags(sub.add_parser("send", help="send an email (or --count copies, or a --batch of many)"))
    send.add_argument("--from", dest="from_address", help="sender (required unless each --batch line has one)")
    send.add_argument("--to", action="append", default=[])
    send.add_argument("--cc", action="append", default=[])
    send.add_argument("--bcc", action="append", default=[])
    send.add_argument("--reply-to")
    send.add_argument("--subject")
    send.add_argument("--text", help="plain-text body, or @PATH")
    send.add_argument("--html", help="HTML body, or @PATH")
    send.add_argument("--text-file", metavar="PATH", help="plain-text body from a file (- for stdin)")
    send.add_argument("--html-file", metavar="PATH", help="HTML body from a file (- for stdin)")
    send.add_argument("--header", action="append", default=[], metavar="NAME=VALUE")
    send.add_argument("--tag", action="append", default=[])
    send.add_argument("--meta", action="append", default=[], metavar="KEY=VALUE")
    send.add_argument("--attach", action="append", default=[], metavar="PATH[:TYPE]",
                      help="attach a file (repeatable); the type is guessed from the name")
    send.add_argument("--inline", action="append", default=[], metavar="PATH:CONTENT_ID[:TYPE]",
                      help="inline part the HTML references as cid:CONTENT_ID")
    send.add_argument("--send-at", help="ISO 8601 time with offset, e.g. 2026-12-01T09:00:00+00:00")
    send.add_argument("--expires-at", help="ISO 8601 time with offset; undelivered by then → FAILED")
    send.add_argument("--unsubscribe", action=argparse.BooleanOptionalAction, default=None,
                      help="add one-click unsubscribe headers (RFC 8058); default: the account's setting")
    send.add_argument("--track-opens", action=argparse.BooleanOptionalAction, default=None,
                      help="open-tracking pixel in the html part (docs/tracking.md); default: the account's setting")
    send.add_argument("--track-clicks", action=argparse.BooleanOptionalAction, default=None,
                      help="rewrite the html part's links to count clicks; default: the account's setting")
    send.add_argument("--idempotency-key", help="makes retrying this send safe (24 h); with --count/--batch, "
                      "request n uses KEY-n. Without one, the client makes one up per request")
    send.add_argument("--count", type=int, default=1, metavar="N", help="send N copies (each a separate email)")
    send.add_argument("--batch", metavar="PATH", help="one request per line (- for stdin): a JSON object of "
                      "SendRequest fields merged over the flags, or a bare recipient address")
    send.add_argument("--concurrency", type=int, default=8, metavar="K", help="Sends in flight (--count; --batch uses one SendStream)")
    send.add_argument("--no-progress", action="store_true", help="no progress on stderr for --count/--batch")
    add_send_template_flags(send)
    send.set_defaults(func=cmd_send)

    cancel = client_flags(sub.add_parser("cancel", help="cancel a scheduled email"))
    cancel.add_argument("message_id")
    cancel.set_defaults(func=cmd_cancel)

    status = client_flags(sub.add_parser("status", help="show an email's status, recipients and events"))
    status.add_argument("message_id")
    status.add_argument("--json", action="store_true", help="the GetStatus response as JSON")
    status.set_defaults(func=cmd_status)

    events = client_flags(sub.add_parser(
        "events", help="print events, one line each (--json: NDJSON); --follow to keep streaming"))
    events.add_argument("--follow", action="store_true", help="stream forever, resuming by cursor")
    events.add_argument("--json", action="store_true", help="one JSON object per line (NDJSON)")
    events.add_argument("--after", help="resume after this cursor")
    events.add_argument("--message-id", action="append", default=[])
    events.add_argument("--type", action="append", default=[], help="e.g. sent, bounced")
    events.add_argument("--tag", action="append", default=[], help="only emails with this tag")
    events.add_argument("--from-now", action="store_true", help="skip stored events")
    events.add_argument("--idle-timeout", type=float, default=1.0, metavar="SECONDS",
                        help="without --follow: stop once no event came for this long (default 1)")
    events.set_defaults(func=cmd_events)

    add_domain_commands(sub, client_flags, make_client)
    add_suppression_commands(sub, client_flags, make_client)
    add_template_commands(sub, client_flags, make_client)
    add_stats_commands(sub, client_flags, make_client)
    add_email_commands(sub, client_flags, make_client)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="postwire",
        description="Send email through Postwire and follow its events; where the service is installed,"
        " run and operate it too.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for entry in entry_points(group=COMMANDS_GROUP):  # the service's operator commands
        entry.load()(sub)
    add_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except Exception as exc:
        from postwire_client.errors import PostwireError

        if isinstance(exc, PostwireError):
            print(f"error: {exc.code.name}: {exc.message}", file=sys.stderr)
            for field, description in exc.violations:
                print(f"  {field}: {description}", file=sys.stderr)
            if exc.retry_after is not None:
                print(f"  retry after {exc.retry_after:g} s", file=sys.stderr)
            return 1
        raise


if __name__ == "__main__":
    sys.exit(main())
