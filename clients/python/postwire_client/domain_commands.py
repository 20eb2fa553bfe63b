"""The `postwire domains ...` and `postwire validate` commands, and how they print.

    postwire domains create example.com [--rsa] [--ed25519]   the records to publish
    postwire domains list | get ID | verify ID | delete ID | rotate-key ID [--ed25519]
    postwire validate ADDRESS...                             one verdict per address

`ID` is a domain id (`dom_...`) or the domain name. create, get, verify and rotate-key
print the domain and its DNS records as a table (purpose, type, name, value, status);
`--json` prints the response instead (`validate --json`: one check per line, NDJSON).
Errors are printed by the command's `main()` in cli.py (one line, exit status 1).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from google.protobuf import json_format

from postwire.v1 import address_service_pb2 as apb
from postwire.v1 import domain_pb2
from postwire_client.domains import ED25519, RSA
from postwire_client.formatting import _time, to_json

if TYPE_CHECKING:
    from postwire_client.sdk import Client

MAX_BATCH = 1000  # addresses per ValidateAddresses call
VALUE_WIDTH = 60  # longer values (DKIM keys) are printed whole, past the column


def _name(enum: Any, value: int, prefix: str) -> str:
    try:
        return str(enum.Name(value)).removeprefix(prefix)
    except ValueError:
        return str(value)


def table(rows: Sequence[Sequence[str]], widths: Sequence[int | None] = ()) -> list[str]:
    """Left-aligned columns two spaces apart; a column's width is its widest cell, at
    most `widths[i]` when given (a longer cell pushes the rest of its row right)."""
    lines = []
    caps = list(widths) + [None] * (len(rows[0]) - len(widths)) if rows else []
    sizes = [max(len(r[i]) for r in rows) for i in range(len(caps))]
    sizes = [s if cap is None else min(s, cap) for s, cap in zip(sizes, caps, strict=True)]
    for row in rows:
        cells = [cell.ljust(size) for cell, size in zip(row[:-1], sizes, strict=False)] + [row[-1]]
        lines.append("  ".join(cells).rstrip())
    return lines


def records_table(records: Sequence[domain_pb2.DnsRecord]) -> list[str]:
    """The DNS records to publish: purpose (`*` when required to verify), type, name,
    value, status; a record holding other values is followed by what was found."""
    rows = [["PURPOSE", "TYPE", "NAME", "VALUE", "STATUS"]]
    found: dict[int, list[str]] = {}
    for r in records:
        purpose = _name(domain_pb2.DnsRecordPurpose, r.purpose, "DNS_RECORD_PURPOSE_").replace("_", "-")
        rows.append([purpose + ("*" if r.required else ""), r.type, r.name, r.value,
                     _name(domain_pb2.DnsRecordStatus, r.status, "DNS_RECORD_STATUS_")])
        if r.status == domain_pb2.DNS_RECORD_STATUS_DIFFERENT and r.found:
            found[len(rows) - 1] = list(r.found)
    lines = []
    for i, line in enumerate(table(rows, (None, None, None, VALUE_WIDTH))):
        lines.append(line)
        lines += [f"    found: {value}" for value in found.get(i, [])]
    lines.append("* required: the domain is verified once these are found; the others are recommended.")
    return lines


def domain_text(domain: domain_pb2.Domain) -> str:
    """The domain's name, state, id, times and reason, then its records and keys."""
    state = _name(domain_pb2.DomainState, domain.state, "DOMAIN_STATE_")
    lines = [f"{domain.name}  {state}  {domain.domain_id}"]
    if domain.reason:
        lines.append(f"  {'reason:':<14}{domain.reason}")
    for label, field in (("created", "created_at"), ("last checked", "last_checked_at"),
                         ("verified", "verified_at"), ("next check", "next_check_at")):
        if domain.HasField(field):
            lines.append(f"  {label + ':':<14}{_time(getattr(domain, field))}")
    lines += ["", "DNS records to publish:", *records_table(domain.records)]
    if domain.dkim_keys:
        lines += ["", "DKIM keys:"]
        rows = [["SELECTOR", "ALGORITHM", "STATE", "CREATED", "ACTIVATED"]]
        for k in domain.dkim_keys:
            rows.append([k.selector, _name(domain_pb2.DkimAlgorithm, k.algorithm, "DKIM_ALGORITHM_"),
                         _name(domain_pb2.DkimKeyState, k.state, "DKIM_KEY_STATE_"), _time(k.created_at),
                         _time(k.activated_at) if k.HasField("activated_at") else "-"])
        lines += table(rows)
    return "\n".join(lines)


def domains_lines(domains: Sequence[domain_pb2.Domain]) -> list[str]:
    """One line per domain: name, state, id, last check."""
    if not domains:
        return ["no domains yet: add one with `postwire domains create NAME`"]
    rows = [["NAME", "STATE", "ID", "LAST CHECKED"]]
    rows += [[d.name, _name(domain_pb2.DomainState, d.state, "DOMAIN_STATE_"), d.domain_id,
              _time(d.last_checked_at) if d.HasField("last_checked_at") else "-"] for d in domains]
    return table(rows)


def check_line(check: apb.AddressCheck) -> str:
    """address, verdict, then why (and where mail would go)."""
    verdict = _name(apb.AddressVerdict, check.verdict, "ADDRESS_VERDICT_")
    line = f"{check.address}  {verdict.lower()}  {check.reason}".rstrip()
    if check.mail_hosts:
        line += f" ({', '.join(check.mail_hosts)})"
    return line


def algorithms(args: argparse.Namespace) -> list[int]:
    """`--rsa` / `--ed25519`: the keys to create (RSA alone when neither is given)."""
    chosen = ([RSA] if args.rsa else []) + ([ED25519] if args.ed25519 else [])
    return chosen or [RSA]


def _json(message: Any) -> str:
    return json_format.MessageToJson(message, preserving_proto_field_name=True)


def _client(args: argparse.Namespace) -> Client:
    return args.make_client(args)  # set by add_domain_commands: the command's own client factory


def cmd_domains_create(args: argparse.Namespace) -> int:
    with _client(args) as client:
        response = client.create_domain(args.name, dkim_algorithms=algorithms(args))
    print(_json(response) if args.json else domain_text(response.domain))
    if not args.json:
        print(f"\nPublish the records, then run: postwire domains verify {response.domain.name}")
    return 0


def cmd_domains_list(args: argparse.Namespace) -> int:
    with _client(args) as client:
        domains = list(client.iter_domains())
    if args.json:
        from postwire.v1 import domain_service_pb2

        print(_json(domain_service_pb2.ListDomainsResponse(domains=domains)))
    else:
        print("\n".join(domains_lines(domains)))
    return 0


def cmd_domains_get(args: argparse.Namespace) -> int:
    with _client(args) as client:
        response = client.get_domain(args.domain_id)
    print(_json(response) if args.json else domain_text(response.domain))
    return 0


def cmd_domains_verify(args: argparse.Namespace) -> int:
    with _client(args) as client:
        response = client.verify_domain(args.domain_id)
    print(_json(response) if args.json else domain_text(response.domain))
    return 0


def cmd_domains_delete(args: argparse.Namespace) -> int:
    with _client(args) as client:
        client.delete_domain(args.domain_id)
    print(f"deleted {args.domain_id}: mail from it is refused from now on")
    return 0


def cmd_domains_rotate_key(args: argparse.Namespace) -> int:
    with _client(args) as client:
        response = client.rotate_dkim_key(args.domain_id, algorithm=ED25519 if args.ed25519 else RSA)
    if args.json:
        print(_json(response))
        return 0
    selector = response.key.selector
    print(domain_text(response.domain))
    print(f"\nNew key {selector}: publish its DKIM record, then run `postwire domains verify "
          f"{response.domain.name}`; the key it replaces retires once the new one is found.")
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    checks: list[apb.AddressCheck] = []
    with _client(args) as client:
        if len(args.addresses) == 1:
            checks.append(client.validate_address(args.addresses[0]).check)
        else:
            for start in range(0, len(args.addresses), MAX_BATCH):
                checks += client.validate_addresses(args.addresses[start : start + MAX_BATCH]).checks
    show: Callable[[apb.AddressCheck], str] = to_json if args.json else check_line
    for check in checks:
        print(show(check))
    return 0


def add_domain_commands(sub: Any, client_flags: Callable[[argparse.ArgumentParser], argparse.ArgumentParser],
                        make_client: Callable[[argparse.Namespace], Client]) -> None:
    """`domains` (with its own subcommands) and `validate`, added to the `postwire` parser;
    `make_client` builds the client from the parsed flags."""
    domains = sub.add_parser("domains", help="manage sending domains: DNS records, DKIM keys (admin key)")
    actions = domains.add_subparsers(dest="domains_command", required=True, metavar="ACTION")

    def action(name: str, help: str, func: Callable[[argparse.Namespace], int], *, json: bool = True,
               ref: bool = True) -> argparse.ArgumentParser:
        p = client_flags(actions.add_parser(name, help=help))
        if ref:
            p.add_argument("domain_id", metavar="ID", help="the domain's id (dom_...) or its name")
        if json:
            p.add_argument("--json", action="store_true", help="the response as JSON")
        p.set_defaults(func=func, make_client=make_client)
        return p

    create = action("create", "add a domain and print the DNS records to publish", cmd_domains_create, ref=False)
    create.add_argument("name", metavar="NAME", help="the domain, e.g. example.com")
    create.add_argument("--rsa", action="store_true", help="an RSA-2048 key (the default when no flag is given)")
    create.add_argument("--ed25519", action="store_true",
                        help="an Ed25519 key; give --rsa too, as not every receiver verifies Ed25519")
    action("list", "list the account's domains", cmd_domains_list, ref=False)
    action("get", "show a domain, its records and keys", cmd_domains_get)
    action("verify", "look the domain's records up in DNS now", cmd_domains_verify)
    action("delete", "delete a domain and its keys", cmd_domains_delete, json=False)
    rotate = action("rotate-key", "make a new DKIM key (a new selector) to publish", cmd_domains_rotate_key)
    rotate.add_argument("--ed25519", action="store_true", help="rotate the Ed25519 key (default: the RSA key)")

    validate = client_flags(sub.add_parser(
        "validate", help="check addresses (syntax, mail hosts, suppression list) without sending"))
    validate.add_argument("addresses", nargs="+", metavar="ADDRESS")
    validate.add_argument("--json", action="store_true", help="one JSON check per line (NDJSON)")
    validate.set_defaults(func=cmd_validate, make_client=make_client)
