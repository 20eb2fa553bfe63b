"""The `postwire templates ...` commands, and the template flags of `postwire send`.

    postwire templates create --name N [--subject S] [--html-file P] [--text-file P]   (admin key)
    postwire templates update ID [--name N] [--subject S] [--html-file P] [--text-file P] [--draft]
    postwire templates get ID [--version V]
    postwire templates list [--limit N]
    postwire templates delete ID
    postwire templates versions ID
    postwire templates activate ID VERSION
    postwire templates render ID [--version V] [--variant NAME] [--var K=V]... [--variables-json JSON]
    postwire send --template ID [--template-version V] [--var K=V]... [--variables-json JSON] ...

Parts come from files (`-` for stdin) or, for the subject, the flag itself; A/B variants
from `--variants-json` (a JSON list of {name, weight, subject, html, text}). `--var`
values are strings; `--variables-json` takes a JSON object (or @PATH) and `--var` entries
override its keys. `--json` prints the response as JSON. Call errors are printed by
`main()` in cli.py.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from postwire.v1 import template_pb2
from postwire_client.domain_commands import table
from postwire_client.formatting import _time, to_json

if TYPE_CHECKING:
    from postwire_client.sdk import Client


def _read(path: str | None) -> str:
    if not path:
        return ""
    if path == "-":
        return sys.stdin.read()
    try:
        return Path(path).read_text()
    except OSError as exc:
        raise SystemExit(f"error: cannot read {path}: {exc.strerror or exc}") from None


def variables(args: argparse.Namespace) -> dict[str, Any] | None:
    """The variables of --variables-json and --var (None when neither was given)."""
    found: dict[str, Any] = {}
    raw = getattr(args, "variables_json", None)
    if raw:
        text = _read(raw[1:]) if raw.startswith("@") else raw
        try:
            found = json.loads(text)
        except ValueError as exc:
            raise SystemExit(f"error: --variables-json: not JSON ({exc})") from None
        if not isinstance(found, dict):
            raise SystemExit("error: --variables-json: give a JSON object, such as {\"name\": \"Ada\"}")
    for pair in getattr(args, "var", None) or []:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise SystemExit(f"error: --var takes NAME=VALUE, got {pair!r}")
        found[name] = value
    return found if raw or getattr(args, "var", None) else None


def template_fields(args: argparse.Namespace) -> dict[str, Any]:
    """The SendRequest fields of `postwire send --template`."""
    if not getattr(args, "template", None):
        if getattr(args, "var", None) or getattr(args, "variables_json", None):
            raise SystemExit("error: --var and --variables-json need --template")
        return {}
    return {"template_id": args.template, "template_version": args.template_version or 0,
            "variables": variables(args)}


def add_variable_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--var", action="append", default=[], metavar="NAME=VALUE", help="a template variable (a string)")
    p.add_argument("--variables-json", metavar="JSON", help="template variables as a JSON object, or @PATH")


def add_send_template_flags(send: argparse.ArgumentParser) -> None:
    """`postwire send --template ID [--template-version V] [--var K=V] [--variables-json J]`."""
    send.add_argument("--template", metavar="ID", help="render this template (tpl_...) instead of --subject/--text/--html")
    send.add_argument("--template-version", type=int, default=0, metavar="V", help="default: the active version")
    add_variable_flags(send)


def _variants(raw: str | None) -> list[template_pb2.TemplateVariant]:
    if not raw:
        return []
    text = _read(raw[1:]) if raw.startswith("@") else raw
    try:
        items = json.loads(text)
        return [template_pb2.TemplateVariant(**item) for item in items]
    except (ValueError, TypeError) as exc:
        raise SystemExit(f"error: --variants-json: a JSON list of {{name, weight, subject, html, text}} ({exc})") from None


def _content(args: argparse.Namespace) -> dict[str, Any]:
    return {"subject": args.subject or "", "html": _read(args.html_file), "text": _read(args.text_file),
            "variants": _variants(args.variants_json)}


def template_lines(template: template_pb2.Template) -> list[str]:
    lines = [f"{template.template_id}  {template.name}", f"active version {template.active_version}, "
             f"latest {template.latest_version}, created {_time(template.created_at)}"]
    if template.HasField("version"):
        v = template.version
        parts = [(f"variant {x.name} (weight {x.weight})", x) for x in v.variants] or [("", v)]
        lines.append(f"version {v.version}{' (active)' if v.active else ''}, created {_time(v.created_at)}")
        for title, p in parts:
            if title:
                lines.append(f"--- {title}")
            lines += [f"subject: {p.subject}", "html:", p.html, "text:", p.text]
    return lines


def _client(args: argparse.Namespace) -> Client:
    return args.make_client(args)  # set by add_template_commands


def _show(args: argparse.Namespace, reply: Any, lines: Callable[[], list[str]]) -> int:
    print(to_json(reply) if args.json else "\n".join(lines()))
    return 0


def cmd_create(args: argparse.Namespace) -> int:
    with _client(args) as client:
        reply = client.create_template(args.name, **_content(args))
    return _show(args, reply, lambda: [reply.template.template_id])


def cmd_update(args: argparse.Namespace) -> int:
    with _client(args) as client:
        reply = client.update_template(args.template_id, name=args.name or "", draft=args.draft, **_content(args))
    t = reply.template
    return _show(args, reply, lambda: [f"{t.template_id}  version {t.latest_version} stored"
                                       f"{', active' if t.active_version == t.latest_version else ' (draft)'}"])


def cmd_get(args: argparse.Namespace) -> int:
    with _client(args) as client:
        reply = client.get_template(args.template_id, version=args.version)
    return _show(args, reply, lambda: template_lines(reply.template))


def cmd_list(args: argparse.Namespace) -> int:
    found: list[template_pb2.Template] = []
    with _client(args) as client:
        for template in client.iter_templates():
            found.append(template)
            if args.limit and len(found) >= args.limit:
                break
    if args.json:
        for template in found:
            print(to_json(template))
        return 0
    rows = [["ID", "NAME", "ACTIVE", "LATEST", "CREATED"]]
    rows += [[t.template_id, t.name, str(t.active_version), str(t.latest_version), _time(t.created_at)] for t in found]
    print("\n".join(table(rows)) if found else "no templates")
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    with _client(args) as client:
        reply = client.delete_template(args.template_id)
    return _show(args, reply, lambda: [f"{args.template_id}  deleted"])


def cmd_versions(args: argparse.Namespace) -> int:
    with _client(args) as client:
        reply = client.list_template_versions(args.template_id)
    rows = [["VERSION", "ACTIVE", "CREATED", "VARIANTS"]]
    rows += [[str(v.version), "yes" if v.active else "", _time(v.created_at),
              ", ".join(f"{x.name}:{x.weight}" for x in v.variants) or "-"] for v in reply.versions]
    return _show(args, reply, lambda: table(rows))


def cmd_activate(args: argparse.Namespace) -> int:
    with _client(args) as client:
        reply = client.activate_template_version(args.template_id, args.version)
    return _show(args, reply, lambda: [f"{args.template_id}  version {reply.template.active_version} active"])


def cmd_render(args: argparse.Namespace) -> int:
    with _client(args) as client:
        reply = client.render_template(args.template_id, variables=variables(args), version=args.version,
                                       variant=args.variant or "")
    label = f"version {reply.version}" + (f", variant {reply.variant}" if reply.variant else "")
    return _show(args, reply, lambda: [label, f"subject: {reply.subject}", "html:", reply.html, "text:", reply.text])


def add_template_commands(sub: Any, client_flags: Callable[[argparse.ArgumentParser], argparse.ArgumentParser],
                          make_client: Callable[[argparse.Namespace], Client]) -> None:
    """`templates` (create, update, get, list, delete, versions, activate, render)."""
    parser = sub.add_parser("templates", help="email templates: versions, A/B variants, previews (changes need an admin key)")
    actions = parser.add_subparsers(dest="templates_command", required=True, metavar="ACTION")

    def action(name: str, help: str, func: Callable[[argparse.Namespace], int], *, by_id: bool = True) -> Any:
        p = client_flags(actions.add_parser(name, help=help))
        p.add_argument("--json", action="store_true", help="the response as JSON")
        if by_id:
            p.add_argument("template_id", metavar="ID")
        p.set_defaults(func=func, make_client=make_client)
        return p

    def content_flags(p: argparse.ArgumentParser) -> None:
        p.add_argument("--subject", help="the subject line's template")
        p.add_argument("--html-file", metavar="PATH", help="the html part's template (- for stdin)")
        p.add_argument("--text-file", metavar="PATH", help="the text part's template (- for stdin)")
        p.add_argument("--variants-json", metavar="JSON", help="A/B variants: a JSON list of {name, weight, subject, "
                       "html, text}, or @PATH")

    create = action("create", "store a new template (prints its id)", cmd_create, by_id=False)
    create.add_argument("--name", required=True)
    content_flags(create)
    update = action("update", "store a new version (active unless --draft)", cmd_update)
    update.add_argument("--name", help="rename the template")
    update.add_argument("--draft", action="store_true", help="do not activate the new version")
    content_flags(update)
    action("get", "show a template and its active version (or --version)", cmd_get).add_argument(
        "--version", type=int, default=0)
    action("list", "list the account's templates, newest first", cmd_list, by_id=False).add_argument(
        "--limit", type=int, default=0, metavar="N")
    action("delete", "delete a template (sent emails are unchanged)", cmd_delete)
    action("versions", "list a template's versions", cmd_versions)
    action("activate", "make a version the active one", cmd_activate).add_argument("version", type=int)
    render = action("render", "render a template with variables; sends nothing", cmd_render)
    render.add_argument("--version", type=int, default=0)
    render.add_argument("--variant", help="default: the version's first variant")
    add_variable_flags(render)
