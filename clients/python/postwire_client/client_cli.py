"""The `postwire` client commands: send (one, `--count N` copies, or a `--batch` of many),
status, cancel, events. They connect to POSTWIRE_ADDRESS with POSTWIRE_API_KEY (or
--address / --api-key), falling back to the embedded mode's .postwire/dev-api-key.

Output: `send` prints message ids on stdout (one per request, in input order);
`status` and `events` print readable lines, or JSON with `--json` (`events --json` is
NDJSON, one event per line). Long sends report progress on stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from google.protobuf import json_format
from pydantic_settings import BaseSettings, SettingsConfigDict

from postwire.v1 import email_pb2, event_pb2
from postwire_client.batch import batch_requests, send_many
from postwire_client.progress import Progress

if TYPE_CHECKING:
    from postwire.v1 import email_service_pb2 as pb
    from postwire_client.aio import AsyncClient
    from postwire_client.sdk import Client


class ClientSettings(BaseSettings):
    """Where the CLI's client commands connect, and with which key."""

    model_config = SettingsConfigDict(env_prefix="POSTWIRE_", extra="ignore")
    address: str = "127.0.0.1:50051"
    api_key: str = ""


def _target(args: argparse.Namespace) -> tuple[str, str]:
    settings = ClientSettings()
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


# Formatting ------------------------------------------------------------------------------


def _time(stamp: Any) -> str:
    if not stamp.seconds and not stamp.nanos:
        return "-"
    return stamp.ToDatetime(tzinfo=UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def event_line(event: event_pb2.Event) -> str:
    """One readable line: time, type, message id, recipient, SMTP code, then the detail."""
    kind = event_pb2.EventType.Name(event.type).removeprefix("EVENT_TYPE_")
    note = " ".join((event.detail or event.smtp_message).split())
    fields = [_time(event.occurred_at), f"{kind:<10}", event.message_id or "-", event.recipient or "-",
              str(event.smtp_code) if event.smtp_code else "-"]
    return "  ".join(fields) + (f"  {note}" if note else "")


def status_text(status: pb.GetStatusResponse) -> str:
    name = email_pb2.EmailStatus.Name(status.status).removeprefix("EMAIL_STATUS_")
    lines = [f"{status.message_id}  {name}  attempts {status.attempts}"]
    for label, field in (("created", "created_at"), ("send at", "send_at"), ("sent", "sent_at"),
                         ("next attempt", "next_attempt_at"), ("expires", "expires_at")):
        if status.HasField(field):
            lines.append(f"  {label + ':':<14}{_time(getattr(status, field))}")
    if status.last_error:
        lines.append(f"  {'last error:':<14}{status.last_error}")
    if status.recipients:
        lines.append("recipients:")
        for r in status.recipients:
            reply = f"  {r.smtp_code} {' '.join(r.smtp_message.split())}" if r.smtp_code else ""
            lines.append(f"  {r.address}  {email_pb2.EmailStatus.Name(r.status).removeprefix('EMAIL_STATUS_')}{reply}")
    if status.events:
        lines.append("events:")
        lines += [f"  {event_line(e)}" for e in status.events]
    return "\n".join(lines)


def _json(message: Any) -> str:
    return json_format.MessageToJson(message, preserving_proto_field_name=True, indent=None)


# Building send requests ------------------------------------------------------------------


def _read_body(value: str | None, file: str | None, flag: str) -> str:
    """A body from --text/--html (TEXT or @PATH) or --text-file/--html-file (PATH or -)."""
    if value and file:
        raise SystemExit(f"error: give --{flag} or --{flag}-file, not both")
    if file:
        return sys.stdin.read() if file == "-" else Path(file).read_text()
    if value and value.startswith("@"):
        return Path(value[1:]).read_text()
    return value or ""


def _pairs(values: list[str], flag: str) -> dict[str, str]:
    out = {}
    for value in values:
        name, sep, val = value.partition("=")
        if not sep:
            raise SystemExit(f"error: {flag} takes NAME=VALUE, got {value!r}")
        out[name] = val
    return out


def _attachment(spec: str, inline: bool) -> email_pb2.Attachment:
    """--attach PATH[:CONTENT_TYPE], --inline PATH:CONTENT_ID[:CONTENT_TYPE]; the type is
    guessed from the file name when not given. A PATH that exists is taken whole."""
    from postwire_client.sdk import attachment

    if not inline and Path(spec).is_file():
        return attachment(spec)
    parts = spec.split(":")
    path, rest = parts[0], parts[1:]
    content_id = rest.pop(0) if inline and rest else ""
    if inline and not content_id:
        raise SystemExit(f"error: --inline takes PATH:CONTENT_ID[:TYPE], got {spec!r}")
    if not Path(path).is_file():
        raise SystemExit(f"error: no such file: {path}")
    return attachment(path, rest[0] if rest else None, content_id=content_id)


def _timestamp(value: str) -> datetime:
    stamp = datetime.fromisoformat(value)
    if stamp.tzinfo is None:
        raise SystemExit(f"error: {value!r} needs a UTC offset, e.g. 2026-12-01T09:00:00+00:00")
    return stamp


def base_request(args: argparse.Namespace) -> pb.SendRequest:
    """The SendRequest the flags describe (each --batch line is merged over it)."""
    from postwire_client.sdk import build_send_request

    stdin_readers = [f for f in (args.text_file, args.html_file, args.batch) if f == "-"]
    if len(stdin_readers) > 1:
        raise SystemExit("error: only one of --text-file, --html-file and --batch can read stdin (-)")
    fields: dict[str, Any] = dict(
        from_address=args.from_address or "", to=args.to, cc=args.cc, bcc=args.bcc, reply_to=args.reply_to or "",
        subject=args.subject or "", text_body=_read_body(args.text, args.text_file, "text"),
        html_body=_read_body(args.html, args.html_file, "html"), headers=_pairs(args.header, "--header"),
        tags=args.tag, metadata=_pairs(args.meta, "--meta"),
        attachments=[_attachment(a, False) for a in args.attach] + [_attachment(a, True) for a in args.inline],
        send_at=_timestamp(args.send_at) if args.send_at else None,
        expires_at=_timestamp(args.expires_at) if args.expires_at else None,
    )
    return build_send_request(None, fields, auto_idempotency_key=False)  # type: ignore[arg-type]


# Commands --------------------------------------------------------------------------------


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
    show: Callable[[event_pb2.Event], str] = _json if args.json else event_line
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
    send.add_argument("--idempotency-key", help="makes retrying this send safe (24 h); with --count/--batch, "
                      "request n uses KEY-n. Without one, the client makes one up per request")
    send.add_argument("--count", type=int, default=1, metavar="N", help="send N copies (each a separate email)")
    send.add_argument("--batch", metavar="PATH", help="one request per line (- for stdin): a JSON object of "
                      "SendRequest fields merged over the flags, or a bare recipient address")
    send.add_argument("--concurrency", type=int, default=8, metavar="K", help="requests in flight (--count/--batch)")
    send.add_argument("--no-progress", action="store_true", help="no progress on stderr for --count/--batch")
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
