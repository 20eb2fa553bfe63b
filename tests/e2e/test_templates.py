"""Templates (TemplateService) on the session stack: versions and activation, previews,
StrictUndefined and sandbox errors through the API, Send / SendBatch / SendStream by
template (the stored and delivered email is the rendered one and stays so after the
template changes), A/B variants recorded on the email by weight, tenants, scopes, JSON
through the real Envoy, and the CLI."""

from __future__ import annotations

import asyncio
import json
import secrets
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from postwire.v1 import email_service_pb2 as epb
from postwire.v1 import template_pb2
from postwire_client import Client, InvalidArgument, NotFound, PermissionDenied
from postwire_client.aio import AsyncClient
from tests.conftest import Stack
from tests.e2e.test_keys_and_limits import create_key
from tests.support.envoy import run_envoy
from tests.support.processes import POSTWIRE, REPO, base_env

HTML = "<p>Hello {{ first_name }}, your order {{ order.id }} ({{ order.lines|length }} items)</p>"
SENDER = "Shop <shop@example.com>"


class Account:
    """A fresh account with an admin key (every scope) and a read-only key."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.name = f"tpl-{secrets.token_hex(3)}"
        self.admin_key = create_key(stack, self.name, *[f for s in ("send", "read", "events", "admin")
                                                          for f in ("--scope", s)])
        self.read_key = create_key(stack, self.name, "--scope", "read")

    def client(self, key: str | None = None) -> Client:
        return Client(self.stack.address, key or self.admin_key)


def stored(stack: Stack, message_id: str) -> tuple[dict[str, Any], str | None, int | None, str | None]:
    """The email's stored content and its template columns, read from PostgreSQL."""
    url = stack.env["POSTWIRE_DATABASE_URL"].replace("+psycopg", "")
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT content, template_id, template_version, template_variant FROM emails"
                           " WHERE public_id = %s", (message_id,)).fetchone()
    assert row is not None
    content = row[0] if isinstance(row[0], dict) else json.loads(row[0])
    return content, row[1], row[2], row[3]


def violations(caught: pytest.ExceptionInfo[InvalidArgument]) -> dict[str, str]:
    return dict(caught.value.violations)


@pytest.fixture
def account(stack: Stack) -> Account:
    return Account(stack)


@pytest.fixture
def client(account: Account) -> Any:
    with account.client() as c:
        yield c


def test_versions_activation_and_listing(client: Client) -> None:
    created = client.create_template("welcome", subject="Hi v1", text="one").template
    assert created.template_id.startswith("tpl_") and (created.active_version, created.latest_version) == (1, 1)
    assert created.version.version == 1 and created.version.active and created.version.text == "one"
    tid = created.template_id
    second = client.update_template(tid, subject="Hi v2", text="two").template
    assert (second.active_version, second.latest_version, second.version.text) == (2, 2, "two")
    draft = client.update_template(tid, name="welcome (renamed)", subject="Hi v3", text="three", draft=True).template
    assert (draft.active_version, draft.latest_version, draft.name) == (2, 3, "welcome (renamed)")
    assert client.get_template(tid).template.version.text == "two"  # the active one
    assert client.get_template(tid, version=3).template.version.text == "three"
    listed = client.list_template_versions(tid).versions
    assert [(v.version, v.active, v.text) for v in listed] == [(3, False, ""), (2, True, ""), (1, False, "")]
    page = client.list_template_versions(tid, page_size=2)
    rest = client.list_template_versions(tid, page_token=page.next_page_token)
    assert [v.version for v in page.versions] == [3, 2] and [v.version for v in rest.versions] == [1]

    back = client.activate_template_version(tid, 1).template
    assert back.active_version == 1 and back.version.text == "one"
    assert client.render_template(tid).text == "one"
    assert client.activate_template_version(tid, 3).template.active_version == 3
    assert client.render_template(tid).subject == "Hi v3"
    with pytest.raises(NotFound):
        client.activate_template_version(tid, 9)
    with pytest.raises(NotFound):
        client.get_template(tid, version=9)

    other = client.create_template("second", html="<p>x</p>").template.template_id
    assert [t.template_id for t in client.iter_templates()][:2] == [other, tid]
    first = client.list_templates(page_size=1)
    assert [t.template_id for t in first.templates] == [other] and not first.templates[0].HasField("version")
    assert client.list_templates(page_token=first.next_page_token).templates[0].template_id == tid
    client.delete_template(other)
    with pytest.raises(NotFound):
        client.get_template(other)
    with pytest.raises(NotFound):
        client.delete_template(other)


def test_create_refuses_syntax_errors_with_their_line_and_bad_content(client: Client) -> None:
    with pytest.raises(InvalidArgument) as caught:
        client.create_template("broken", subject="ok", html="<p>\n{% if x %}\n</p>", text="{{ a }")
    found = violations(caught)
    assert set(found) == {"html", "text"} and found["text"].startswith("line 1:")
    with pytest.raises(InvalidArgument) as caught:
        client.create_template("", text="t")
    assert set(violations(caught)) == {"name"}
    with pytest.raises(InvalidArgument) as caught:
        client.create_template("both", text="t", variants=[template_pb2.TemplateVariant(name="a", text="x")])
    assert set(violations(caught)) == {"text"}
    with pytest.raises(InvalidArgument) as caught:
        client.create_template("big", html="x" * (512 * 1024 + 1))
    assert set(violations(caught)) == {"html"}


def test_render_names_a_missing_variable_and_refuses_sandbox_escapes(client: Client) -> None:
    tid = client.create_template("order", subject="Order {{ order.id }}", html=HTML,
                                 text="Hi {{ first_name }}").template.template_id
    preview = client.render_template(tid, variables={"first_name": "<Ada>", "order": {"id": 42, "lines": [1, 2]}})
    assert preview.subject == "Order 42" and preview.text == "Hi <Ada>"
    assert preview.html == "<p>Hello &lt;Ada&gt;, your order 42 (2 items)</p>" and preview.version == 1
    with pytest.raises(InvalidArgument) as caught:
        client.render_template(tid, variables={"order": {"id": 1, "lines": []}})
    assert list(violations(caught)) == ["variables.first_name"]
    with pytest.raises(InvalidArgument) as caught:
        client.render_template(tid, variables={"first_name": "A", "order": {"lines": []}})
    assert list(violations(caught)) == ["variables.order.id"]

    for source in ("{{ ''.__class__.__mro__ }}", "{{ cycler.__init__.__globals__ }}", "{{ range(10**9)|length }}"):
        escape = client.create_template("escape", html=source).template.template_id
        with pytest.raises(InvalidArgument) as caught:
            client.render_template(escape)
        assert list(violations(caught)) == ["template_id"], source
    nested = client.create_template("slow", text="{% for a in range(10000) %}{% for b in range(10000) %}{{ b }}"
                                    "{% endfor %}{% endfor %}").template.template_id
    started = time.monotonic()
    with pytest.raises(InvalidArgument, match="stopped after"):
        client.render_template(nested)
    assert time.monotonic() - started < 3
    assert client.render_template(tid, variables={"first_name": "A", "order": {"id": 1, "lines": []}}).text == "Hi A"


def test_send_by_template_stores_and_delivers_the_rendered_email_unchanged_by_later_edits(
        account: Account, client: Client) -> None:
    stack = account.stack
    tid = client.create_template("order", subject="Order {{ order.id }}", html=HTML,
                                 text="Hi {{ first_name }}").template.template_id
    variables = {"first_name": "Ada & Bob", "order": {"id": 7, "lines": ["tea"]}}
    reply = client.send(from_address=SENDER, to=["ada@example.com"], template_id=tid, variables=variables)
    received = stack.recorder.wait_for(reply.message_id)
    assert received.message["Subject"] == "Order 7"
    assert received.message.get_body(("html",)).get_content().strip() == \
        "<p>Hello Ada &amp; Bob, your order 7 (1 items)</p>"
    assert received.message.get_body(("plain",)).get_content().strip() == "Hi Ada & Bob"
    content, template_id, version, variant = stored(stack, reply.message_id)
    assert (template_id, version, variant) == (tid, 1, None)
    assert (content["subject"], content["text_body"]) == ("Order 7", "Hi Ada & Bob")
    status = client.get_status(reply.message_id)
    assert (status.template_id, status.template_version, status.template_variant) == (tid, 1, "")

    client.update_template(tid, subject="CHANGED {{ order.id }}", text="changed")
    assert stored(stack, reply.message_id)[0] == content  # the stored email is what was sent
    later = client.send(from_address=SENDER, to=["ada@example.com"], template_id=tid, variables=variables)
    assert stack.recorder.wait_for(later.message_id).message["Subject"] == "CHANGED 7"
    pinned = client.send(from_address=SENDER, to=["ada@example.com"], template_id=tid, template_version=1,
                         variables=variables)
    assert stored(stack, pinned.message_id)[1:] == (tid, 1, None)
    assert stored(stack, pinned.message_id)[0]["subject"] == "Order 7"

    with pytest.raises(InvalidArgument) as caught:
        client.send(from_address=SENDER, to=["ada@example.com"], template_id=tid, template_version=1,
                    variables={"order": {"id": 1, "lines": []}})
    assert list(violations(caught)) == ["variables.first_name"]
    with pytest.raises(InvalidArgument) as caught:
        client.send(from_address=SENDER, to=["ada@example.com"], template_id=tid, subject="mine", variables=variables)
    assert list(violations(caught)) == ["subject"]
    with pytest.raises(InvalidArgument) as caught:
        client.send(from_address=SENDER, to=["ada@example.com"], template_id=tid, template_version=5,
                    variables=variables)
    assert list(violations(caught)) == ["template_version"]
    client.delete_template(tid)
    with pytest.raises(InvalidArgument) as caught:
        client.send(from_address=SENDER, to=["ada@example.com"], template_id=tid, variables=variables)
    assert list(violations(caught)) == ["template_id"]
    assert stored(stack, reply.message_id)[0] == content


def test_send_batch_fails_only_the_items_with_a_bad_template(account: Account, client: Client) -> None:
    tid = client.create_template("batch", subject="Hi {{ name }}", text="Hello {{ name }}").template.template_id
    messages = [
        epb.SendRequest(from_address=SENDER, to=["one@example.com"], template_id=tid),
        epb.SendRequest(from_address=SENDER, to=["two@example.com"], template_id="tpl_doesnotexist"),
        epb.SendRequest(from_address=SENDER, to=["three@example.com"], template_id=tid),
        epb.SendRequest(from_address=SENDER, to=["four@example.com"], subject="inline", text_body="inline"),
    ]
    messages[0].variables.update({"name": "One"})
    results = client.send_batch(messages)
    assert [r.WhichOneof("result") for r in results] == ["accepted", "error", "error", "accepted"]
    assert [v.field for v in results[1].error.field_violations] == ["template_id"]
    assert [v.field for v in results[2].error.field_violations] == ["variables.name"]
    assert account.stack.recorder.wait_for(results[0].accepted.message_id).message["Subject"] == "Hi One"
    assert stored(account.stack, results[3].accepted.message_id)[1:] == (None, None, None)


def test_send_stream_renders_templates_too(account: Account, client: Client) -> None:
    tid = client.create_template("stream", subject="S {{ n }}", text="T {{ n }}").template.template_id

    async def stream() -> list[Any]:
        async with AsyncClient(account.stack.address, account.admin_key) as aclient:
            requests = [epb.SendRequest(from_address=SENDER, to=[f"s{n}@example.com"], template_id=tid) for n in range(3)]
            for n, request in enumerate(requests[:2]):
                request.variables.update({"n": n})
            return [ack async for ack in aclient.send_stream(requests)]

    acks = sorted(asyncio.run(stream()), key=lambda a: a.sequence)
    assert [a.WhichOneof("result") for a in acks] == ["accepted", "accepted", "error"]
    assert [v.field for v in acks[2].error.field_violations] == ["variables.n"]
    assert stored(account.stack, acks[1].accepted.message_id)[0]["subject"] == "S 1"


def test_variants_are_recorded_on_the_email_by_weight(account: Account, client: Client) -> None:
    variants = [template_pb2.TemplateVariant(name="plain", weight=1, subject="A {{ n }}", text="a"),
                template_pb2.TemplateVariant(name="bold", weight=3, subject="B {{ n }}", html="<b>b</b>")]
    created = client.create_template("ab", variants=variants).template
    assert [(v.name, v.weight) for v in created.version.variants] == [("plain", 1), ("bold", 3)]
    tid = created.template_id
    assert client.render_template(tid, variables={"n": 1}).variant == "plain"  # the first by default
    assert client.render_template(tid, variables={"n": 1}, variant="bold").subject == "B 1"
    with pytest.raises(InvalidArgument) as caught:
        client.render_template(tid, variables={"n": 1}, variant="nope")
    assert list(violations(caught)) == ["variant"]
    messages = []
    for n in range(400):
        request = epb.SendRequest(from_address=SENDER, to=[f"ab{n}@example.com"], template_id=tid)
        request.variables.update({"n": n})
        messages.append(request)
    # A test key of the account: the 400 are stored (variant and all) but none reaches SMTP,
    # where they would queue for half a minute ahead of the next test's emails.
    with Client(account.stack.address, create_key(account.stack, account.name, "--kind", "test")) as test_client:
        results = test_client.send_batch(messages)
    rows = [stored(account.stack, r.accepted.message_id) for r in results]
    counts = Counter(variant for _, _, _, variant in rows)
    assert set(counts) == {"plain", "bold"} and 0.6 < counts["bold"] / 400 < 0.9, counts
    for content, _, version, variant in rows[:20]:
        assert version == 1 and content["subject"][0] == {"plain": "A", "bold": "B"}[variant]  # type: ignore[index]
    status = client.get_status(results[0].accepted.message_id)
    assert (status.template_id, status.template_version, status.template_variant) == (tid, 1, rows[0][3])
    # A replay (same idempotency key) finds the original email, whichever variant it would pick now.
    keyed = [client.send(from_address=SENDER, to=["k@example.com"], template_id=tid, variables={"n": 1},
                         idempotency_key="ab-replay").message_id for _ in range(6)]
    assert len(set(keyed)) == 1


def test_another_account_cannot_see_use_or_change_a_template(stack: Stack, account: Account, client: Client) -> None:
    tid = client.create_template("private", subject="s", text="t {{ x }}").template.template_id
    with Account(stack).client() as other:
        for call in (lambda: other.get_template(tid), lambda: other.render_template(tid, variables={"x": 1}),
                     lambda: other.update_template(tid, text="mine"), lambda: other.delete_template(tid),
                     lambda: other.activate_template_version(tid, 1), lambda: other.list_template_versions(tid)):
            with pytest.raises(NotFound):
                call()
        assert list(other.iter_templates()) == []
        with pytest.raises(InvalidArgument) as caught:
            other.send(from_address=SENDER, to=["x@example.com"], template_id=tid, variables={"x": 1})
        assert list(violations(caught)) == ["template_id"]
    assert client.get_template(tid).template.latest_version == 1


def test_reads_need_the_read_scope_and_changes_the_admin_scope(account: Account, client: Client) -> None:
    tid = client.create_template("scoped", text="t").template.template_id
    with account.client(account.read_key) as reader:
        assert reader.get_template(tid).template.template_id == tid
        assert reader.render_template(tid).text == "t"
        assert reader.list_templates().templates and reader.list_template_versions(tid).versions
        for call in (lambda: reader.create_template("x", text="t"), lambda: reader.update_template(tid, text="u"),
                     lambda: reader.activate_template_version(tid, 1), lambda: reader.delete_template(tid)):
            with pytest.raises(PermissionDenied):
                call()


def test_json_through_envoy(account: Account, tmp_path: Path) -> None:
    port = int(account.stack.address.rsplit(":", 1)[1])
    admin, reader = {"x-api-key": account.admin_key}, {"x-api-key": account.read_key}
    with run_envoy(port, tmp_path) as envoy, httpx.Client(base_url=envoy.base_url, timeout=10) as http:
        created = http.post("/v1/templates", headers=admin, json={
            "name": "json", "subject": "Hi {{ name }}", "html": "<p>{{ name }} has {{ count }}</p>"})
        assert created.status_code == 200, created.text
        tid = created.json()["template"]["template_id"]
        assert created.json()["template"]["version"]["version"] == 1
        got = http.get(f"/v1/templates/{tid}", headers=reader).json()["template"]
        assert got["active_version"] == 1 and got["version"]["html"].startswith("<p>")
        rendered = http.post(f"/v1/templates/{tid}:render", headers=reader,
                             json={"variables": {"name": "<Ada>", "count": 3}}).json()
        assert rendered["subject"] == "Hi <Ada>" and rendered["html"] == "<p>&lt;Ada&gt; has 3</p>"
        missing = http.post(f"/v1/templates/{tid}:render", headers=reader, json={"variables": {"name": "A"}})
        assert missing.status_code == 400
        assert missing.json()["details"][0]["field_violations"][0]["field"] == "variables.count"

        sent = http.post("/v1/emails", headers=admin, json={
            "from_address": SENDER, "to": ["json@example.com"], "template_id": tid,
            "variables": {"name": "Json", "count": 2}})
        assert sent.status_code == 200, sent.text
        message_id = sent.json()["message_id"]
        received = account.stack.recorder.wait_for(message_id)
        assert received.message["Subject"] == "Hi Json"
        assert received.message.get_body(("html",)).get_content().strip() == "<p>Json has 2</p>"

        updated = http.post(f"/v1/templates/{tid}:update", headers=admin,
                            json={"subject": "New {{ name }}", "html": "<p>new</p>", "draft": True})
        assert updated.status_code == 200 and updated.json()["template"]["active_version"] == 1
        versions = http.get(f"/v1/templates/{tid}/versions", headers=reader).json()["versions"]
        assert [v["version"] for v in versions] == [2, 1]
        activated = http.post(f"/v1/templates/{tid}/versions/2:activate", headers=admin, json={})
        assert activated.status_code == 200 and activated.json()["template"]["active_version"] == 2
        assert stored(account.stack, message_id)[0]["subject"] == "Hi Json"
        listed = http.get("/v1/templates", headers=reader, params={"page_size": 10}).json()
        assert [t["template_id"] for t in listed["templates"]] == [tid]

        assert http.post("/v1/templates", headers=reader, json={"name": "x", "text": "t"}).status_code == 403
        bad = http.post("/v1/templates", headers=admin, json={"name": "x", "text": "{% for %}"})
        assert bad.status_code == 400 and bad.json()["details"][0]["field_violations"][0]["field"] == "text"
        assert http.delete(f"/v1/templates/{tid}", headers=admin).status_code == 200
        assert http.get(f"/v1/templates/{tid}", headers=reader).status_code == 404


def cli(account: Account, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = base_env(address=account.stack.address, api_key=account.admin_key)
    return subprocess.run([POSTWIRE, *args], input=stdin, env=env, cwd=REPO, capture_output=True, text=True, timeout=60)


def test_the_cli_manages_renders_and_sends_templates(account: Account, tmp_path: Path) -> None:
    html = tmp_path / "welcome.html"
    html.write_text("<p>Welcome {{ name }}</p>")
    created = cli(account, "templates", "create", "--name", "welcome", "--subject", "Hi {{ name }}",
                  "--html-file", str(html), "--text-file", "-", stdin="Welcome {{ name }}\n")
    assert created.returncode == 0, created.stderr
    tid = created.stdout.strip()
    assert tid.startswith("tpl_")
    rendered = cli(account, "templates", "render", tid, "--var", "name=Ada")
    assert rendered.returncode == 0 and "subject: Hi Ada" in rendered.stdout and "<p>Welcome Ada</p>" in rendered.stdout
    as_json = cli(account, "templates", "render", tid, "--variables-json", '{"name": "Bo"}', "--json")
    assert json.loads(as_json.stdout)["text"] == "Welcome Bo\n"
    missing = cli(account, "templates", "render", tid)
    assert missing.returncode == 1 and "variables.name" in missing.stderr and "Traceback" not in missing.stderr

    assert "version 2 stored (draft)" in cli(account, "templates", "update", tid, "--subject", "v2", "--text-file", "-",
                                              "--draft", stdin="two").stdout
    versions = cli(account, "templates", "versions", tid).stdout
    assert versions.splitlines()[1].split()[0] == "2" and "yes" in versions.splitlines()[2]
    assert cli(account, "templates", "activate", tid, "2").stdout.strip() == f"{tid}  version 2 active"
    assert "subject: v2" in cli(account, "templates", "get", tid).stdout
    assert tid in cli(account, "templates", "list").stdout
    cli(account, "templates", "activate", tid, "1")

    sent = cli(account, "send", "--from", SENDER, "--to", "cli@example.com", "--template", tid, "--var", "name=Cli")
    assert sent.returncode == 0, sent.stderr
    assert account.stack.recorder.wait_for(sent.stdout.strip()).message["Subject"] == "Hi Cli"
    bad = cli(account, "send", "--from", SENDER, "--to", "cli@example.com", "--template", tid)
    assert bad.returncode == 1 and "variables.name" in bad.stderr

    assert cli(account, "templates", "delete", tid).stdout.strip() == f"{tid}  deleted"
    gone = cli(account, "templates", "get", tid)
    assert gone.returncode == 1 and "NOT_FOUND" in gone.stderr and "Traceback" not in gone.stderr
