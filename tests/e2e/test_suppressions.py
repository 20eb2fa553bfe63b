"""The suppression list API (SuppressionService) on the session stack: CRUD, filters,
pagination, batches with per-address results, tenants, scopes, normalization, what
delivery does with a suppressed recipient, JSON through the real Envoy, and the CLI."""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import httpx
import psycopg
import pytest

from postwire.v1 import email_pb2, event_pb2, suppression_pb2
from postwire_client import Client, InvalidArgument, NotFound, PermissionDenied
from tests.conftest import Stack
from tests.e2e.test_full_stack import wait_status
from tests.e2e.test_keys_and_limits import create_key
from tests.support.envoy import run_envoy
from tests.support.processes import POSTWIRE, REPO, base_env

MANUAL = suppression_pb2.SUPPRESSION_KIND_MANUAL
FINAL = {email_pb2.EMAIL_STATUS_SENT, email_pb2.EMAIL_STATUS_BOUNCED, email_pb2.EMAIL_STATUS_FAILED,
         email_pb2.EMAIL_STATUS_SUPPRESSED}


class Account:
    """A fresh account with an admin key (every scope) and a read-only key."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.name = f"sup-{secrets.token_hex(3)}"
        self.admin_key = create_key(stack, self.name, *[f for s in ("send", "read", "events", "admin")
                                                          for f in ("--scope", s)])
        self.read_key = create_key(stack, self.name, "--scope", "read")

    def client(self, key: str | None = None) -> Client:
        return Client(self.stack.address, key or self.admin_key)

    def insert(self, rows: list[tuple[str, str, datetime]]) -> None:
        """Entries as bounces, complaints and unsubscribes leave them (address, kind, time)."""
        url = self.stack.env["POSTWIRE_DATABASE_URL"].replace("+psycopg", "")
        with psycopg.connect(url) as conn:
            account_id = conn.execute(
                "SELECT a.id FROM accounts a WHERE a.name = %s", (self.name,)
            ).fetchone()[0]  # type: ignore[index]
            with conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO suppressions (account_id, address, reason, created_at, kind, message_id)"
                    " VALUES (%s, %s, %s, %s, %s, %s)",
                    [(account_id, a, f"{k} reason", t, k, "msg_x" if k != "manual" else "") for a, k, t in rows],
                )


@pytest.fixture
def account(stack: Stack) -> Account:
    return Account(stack)


@pytest.fixture
def client(account: Account) -> Iterator[Client]:
    with account.client() as c:
        yield c


def test_add_get_remove_with_normalized_addresses(client: Client) -> None:
    added = client.add_suppression("User@EXAMPLE.com", reason="asked by phone")
    assert added.created
    entry = added.suppression
    assert (entry.address, entry.kind, entry.reason, entry.message_id) == ("user@example.com", MANUAL, "asked by phone", "")
    assert abs(entry.created_at.ToDatetime(tzinfo=UTC) - datetime.now(UTC)) < timedelta(minutes=1)
    again = client.add_suppression("user@example.com", reason="other")
    assert not again.created and again.suppression == entry  # the first entry stays
    assert client.get_suppression("USER@example.COM").suppression == entry

    idn = client.add_suppression("ada@bücher.example").suppression
    assert idn.address == "ada@xn--bcher-kva.example"
    assert client.get_suppression("Ada@XN--BCHER-KVA.example").suppression == idn
    assert not client.add_suppression("ada@xn--bcher-kva.example").created

    assert client.remove_suppression("ADA@Bücher.Example").suppression == idn
    with pytest.raises(NotFound):
        client.get_suppression("ada@bücher.example")
    with pytest.raises(NotFound):
        client.remove_suppression("ada@bücher.example")
    assert [e.address for e in client.iter_suppressions()] == ["user@example.com"]


@pytest.mark.parametrize(("address", "reason", "field"), [
    ("not an address", "", "address"),
    ("Bob <bob@example.com>", "", "address"),
    ("", "", "address"),
    ("a\r\nb@example.com", "", "address"),
    ("ok@example.com", "x" * 1001, "reason"),
    ("ok@example.com", "line\nbreak", "reason"),
])
def test_invalid_input_is_invalid_argument_with_the_field(client: Client, address: str, reason: str, field: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        client.add_suppression(address, reason=reason)
    assert [v[0] for v in caught.value.violations] == [field]
    if field == "address":
        with pytest.raises(InvalidArgument):
            client.get_suppression(address)
        with pytest.raises(InvalidArgument):
            client.remove_suppression(address)


def test_filters_by_kind_created_range_and_prefix(account: Account, client: Client) -> None:
    base = datetime(2026, 1, 1, tzinfo=UTC)
    account.insert([
        ("bounce1@example.com", "hard_bounce", base),
        ("bounce2@example.org", "hard_bounce", base + timedelta(days=1)),
        ("spam@example.com", "complaint", base + timedelta(days=2)),
        ("bye@example.org", "unsubscribe", base + timedelta(days=3)),
        ("bounce_3@example.com", "hard_bounce", base + timedelta(days=4)),
    ])
    client.add_suppression("manual@example.com")

    def addresses(**filters: object) -> list[str]:
        return [e.address for e in client.iter_suppressions(**filters)]

    assert addresses() == ["manual@example.com", "bounce_3@example.com", "bye@example.org", "spam@example.com",
                           "bounce2@example.org", "bounce1@example.com"]
    assert addresses(kind="hard_bounce") == ["bounce_3@example.com", "bounce2@example.org", "bounce1@example.com"]
    assert addresses(kind=suppression_pb2.SUPPRESSION_KIND_COMPLAINT) == ["spam@example.com"]
    assert addresses(kind="unsubscribe") == ["bye@example.org"]
    assert addresses(kind="manual") == ["manual@example.com"]
    assert addresses(created_after=base, created_before=base + timedelta(days=3)) == [
        "spam@example.com", "bounce2@example.org"]  # both bounds exclusive
    assert addresses(created_before=base + timedelta(days=1, seconds=1), kind="hard_bounce") == [
        "bounce2@example.org", "bounce1@example.com"]
    assert addresses(address_prefix="Bounce") == ["bounce_3@example.com", "bounce2@example.org", "bounce1@example.com"]
    assert addresses(address_prefix="bounce_") == ["bounce_3@example.com"]  # LIKE wildcards are literal
    assert addresses(address_prefix="bye@EXAMPLE") == ["bye@example.org"]
    assert addresses(address_prefix="%") == []
    listed = client.get_suppression("spam@example.com").suppression
    assert (listed.kind, listed.reason, listed.message_id) == (
        suppression_pb2.SUPPRESSION_KIND_COMPLAINT, "complaint reason", "msg_x")
    with pytest.raises(InvalidArgument) as caught:
        client.list_suppressions(created_after=base, created_before=base)
    assert [v[0] for v in caught.value.violations] == ["created_before"]
    with pytest.raises(InvalidArgument):
        client.list_suppressions(kind=99)


def test_pages_of_50_cover_120_entries_exactly_newest_first(account: Account, client: Client) -> None:
    base = datetime(2026, 3, 1, tzinfo=UTC)
    spread = [(f"p{i:03}@example.com", "hard_bounce", base + timedelta(minutes=i)) for i in range(60)]
    same_time = [(f"q{i:03}@example.com", "complaint", base + timedelta(minutes=30)) for i in range(60)]
    account.insert(spread + same_time)
    expected = [a for a, _, _ in sorted(spread + same_time, key=lambda r: (r[2], r[0]), reverse=True)]

    seen: list[str] = []
    token = ""
    sizes = []
    while True:
        page = client.list_suppressions(page_size=50, page_token=token)
        sizes.append(len(page.suppressions))
        seen += [e.address for e in page.suppressions]
        token = page.next_page_token
        if not token:
            break
    assert sizes == [50, 50, 20]
    assert seen == expected and len(set(seen)) == 120
    assert len(client.list_suppressions().suppressions) == 50  # the default page
    assert len(client.list_suppressions(page_size=5000).suppressions) == 120  # at most 1000

    first = client.list_suppressions(page_size=10, kind="complaint")
    assert len(first.suppressions) == 10 and first.next_page_token
    second = client.list_suppressions(page_size=10, kind="complaint", page_token=first.next_page_token)
    assert [e.address for e in second.suppressions] == [f"q{i:03}@example.com" for i in range(49, 39, -1)]
    for changed in ({"kind": "hard_bounce"}, {"kind": "complaint", "address_prefix": "q"},
                    {"kind": "complaint", "created_after": base}):
        with pytest.raises(InvalidArgument) as caught:
            client.list_suppressions(page_token=first.next_page_token, **changed)
        assert [v[0] for v in caught.value.violations] == ["page_token"]
        assert "other filters" in caught.value.violations[0][1]
    for token in ("garbage", "²", "e30", "x" * 2000):
        with pytest.raises(InvalidArgument):
            client.list_suppressions(page_token=token)
    with pytest.raises(InvalidArgument):
        client.list_suppressions(page_size=-1)


def test_batches_answer_per_address_and_one_bad_address_fails_alone(client: Client) -> None:
    added = client.add_suppressions(
        ["a@example.com", "not an address", "Bob <b@example.com>", "A@Example.COM", "c@example.org"], reason="import"
    ).results
    assert [r.address for r in added] == ["a@example.com", "not an address", "Bob <b@example.com>", "A@Example.COM",
                                          "c@example.org"]
    assert [r.WhichOneof("result") for r in added] == ["suppression", "error", "error", "suppression", "suppression"]
    assert [r.created for r in added] == [True, False, False, False, True]
    assert (added[1].error.code, added[1].error.field) == (grpc.StatusCode.INVALID_ARGUMENT.value[0], "addresses[1]")
    assert added[2].error.field == "addresses[2]" and "display name" in added[2].error.message
    assert added[3].suppression.address == "a@example.com" and added[0].suppression.reason == "import"

    removed = client.remove_suppressions(["A@example.com", "nobody@example.com", "bad", "c@example.org"]).results
    assert [r.WhichOneof("result") for r in removed] == ["suppression", "error", "error", "suppression"]
    assert (removed[1].error.code, removed[1].error.field) == (grpc.StatusCode.NOT_FOUND.value[0], "addresses[1]")
    assert removed[2].error.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert list(client.iter_suppressions()) == []

    at_limit = [f"n{i}@example.com" for i in range(1000)]
    assert all(r.created for r in client.add_suppressions(at_limit).results)
    for addresses in ([*at_limit, "one@more.example"], []):
        with pytest.raises(InvalidArgument) as caught:
            client.add_suppressions(addresses)
        assert [v[0] for v in caught.value.violations] == ["addresses"]
        with pytest.raises(InvalidArgument):
            client.remove_suppressions(addresses)
    assert len(client.remove_suppressions(at_limit).results) == 1000
    assert list(client.iter_suppressions()) == []


def test_accounts_never_see_or_change_each_others_lists(stack: Stack, client: Client) -> None:
    client.add_suppression("private@example.com", reason="account A's")
    with Account(stack).client() as other:
        assert list(other.iter_suppressions()) == []
        with pytest.raises(NotFound):
            other.get_suppression("private@example.com")
        with pytest.raises(NotFound):
            other.remove_suppression("private@example.com")
        [result] = other.remove_suppressions(["private@example.com"]).results
        assert result.error.code == grpc.StatusCode.NOT_FOUND.value[0]
        assert other.add_suppression("private@example.com").created  # B's own entry
    assert client.get_suppression("private@example.com").suppression.reason == "account A's"


def test_reads_need_the_read_scope_and_changes_the_admin_scope(account: Account, client: Client) -> None:
    client.add_suppression("scoped@example.com")
    with account.client(account.read_key) as reader:
        assert reader.get_suppression("scoped@example.com").suppression.address == "scoped@example.com"
        assert len(reader.list_suppressions().suppressions) == 1
        for call in (lambda: reader.add_suppression("x@example.com"), lambda: reader.remove_suppression("scoped@example.com"),
                     lambda: reader.add_suppressions(["x@example.com"]),
                     lambda: reader.remove_suppressions(["scoped@example.com"])):
            with pytest.raises(PermissionDenied):
                call()
    with account.client(create_key(account.stack, account.name, "--scope", "send")) as sender:
        with pytest.raises(PermissionDenied):
            sender.list_suppressions()
    assert client.get_suppression("scoped@example.com")


def test_send_skips_the_suppressed_recipient_and_delivers_the_other(stack: Stack) -> None:
    admin = create_key(stack, "account-a", "--scope", "admin")
    tag = secrets.token_hex(3)
    blocked, open_ = f"Blocked-{tag}@Example.COM", f"open-{tag}@example.com"
    with Client(stack.address, admin) as client:
        client.add_suppression(blocked, reason="test")
    with stack.client() as client:
        message_id = client.send(from_address="a@example.com", to=[blocked.lower(), open_], subject="two",
                                 text_body="x").message_id
        status = wait_status(client, message_id, FINAL)
    assert status.status == email_pb2.EMAIL_STATUS_SENT
    by_address = {r.address: r.status for r in status.recipients}
    assert by_address == {blocked.lower(): email_pb2.EMAIL_STATUS_SUPPRESSED, open_: email_pb2.EMAIL_STATUS_SENT}
    [suppressed] = [e for e in status.events if e.type == event_pb2.EVENT_TYPE_SUPPRESSED]
    assert suppressed.recipient == blocked.lower() and "test" in suppressed.detail
    received = stack.recorder.wait_for(message_id)
    assert len(stack.recorder.by_message_id(message_id)) == 1
    assert [r.lower() for r in received.rcpt_tos] == [open_]
    assert all(blocked.lower() not in [t.lower() for t in r.rcpt_tos] for r in stack.recorder.received)


def test_json_through_envoy(account: Account, tmp_path: Path) -> None:
    port = int(account.stack.address.rsplit(":", 1)[1])
    admin, reader = {"x-api-key": account.admin_key}, {"x-api-key": account.read_key}
    with run_envoy(port, tmp_path) as envoy, httpx.Client(base_url=envoy.base_url, timeout=10) as http:
        added = http.post("/v1/suppressions", headers=admin, json={"address": "Json@Example.com", "reason": "via JSON"})
        assert added.status_code == 200, added.text
        body = added.json()
        assert body["created"] is True
        assert body["suppression"]["address"] == "json@example.com"
        assert body["suppression"]["kind"] == "SUPPRESSION_KIND_MANUAL"
        assert body["suppression"]["created_at"].endswith("Z")

        batch = http.post("/v1/suppressions:batchAdd", headers=admin,
                          json={"addresses": ["two@example.com", "nope"], "reason": "batch"}).json()
        assert batch["results"][0]["suppression"]["address"] == "two@example.com"
        assert batch["results"][1]["error"] == {"code": 3, "message": batch["results"][1]["error"]["message"],
                                                "field": "addresses[1]"}
        listed = http.get("/v1/suppressions", headers=reader,
                          params={"kind": "SUPPRESSION_KIND_MANUAL", "page_size": 1}).json()
        assert [e["address"] for e in listed["suppressions"]] == ["two@example.com"] and listed["next_page_token"]
        rest = http.get("/v1/suppressions", headers=reader,
                        params={"kind": "SUPPRESSION_KIND_MANUAL", "page_token": listed["next_page_token"]}).json()
        assert [e["address"] for e in rest["suppressions"]] == ["json@example.com"] and rest["next_page_token"] == ""
        dated = http.get("/v1/suppressions", headers=reader,
                         params={"created_after": "2000-01-01T00:00:00Z", "address_prefix": "json"}).json()
        assert [e["address"] for e in dated["suppressions"]] == ["json@example.com"]
        assert http.get("/v1/suppressions/JSON@example.com", headers=reader).json()["suppression"]["reason"] == "via JSON"
        assert http.post("/v1/suppressions", headers=admin, json={"address": "a+tag@bücher.example"}).status_code == 200
        for path in ("a+tag@bücher.example", "a%2Btag%40xn--bcher-kva.example", "A+Tag@XN--BCHER-KVA.example"):
            got = http.get(f"/v1/suppressions/{path}", headers=reader)
            assert got.status_code == 200 and got.json()["suppression"]["address"] == "a+tag@xn--bcher-kva.example", path
        assert http.delete("/v1/suppressions/a%2Btag%40b%C3%BCcher.example", headers=admin).status_code == 200

        assert http.post("/v1/suppressions", headers=reader, json={"address": "x@example.com"}).status_code == 403
        bad = http.post("/v1/suppressions", headers=admin, json={"address": "not an address"})
        assert bad.status_code == 400
        assert bad.json()["details"][0]["field_violations"][0]["field"] == "address"
        mismatch = http.get("/v1/suppressions", headers=reader, params={"page_token": listed["next_page_token"]})
        assert mismatch.status_code == 400

        removed = http.delete("/v1/suppressions/json@example.com", headers=admin)
        assert removed.status_code == 200 and removed.json()["suppression"]["address"] == "json@example.com"
        assert http.delete("/v1/suppressions/json@example.com", headers=admin).status_code == 404
        assert http.get("/v1/suppressions/json@example.com", headers=reader).status_code == 404
        gone = http.post("/v1/suppressions:batchRemove", headers=admin,
                         json={"addresses": ["two@example.com", "json@example.com"]}).json()
        assert [r.get("error", {}).get("code", 0) for r in gone["results"]] == [0, 5]
        assert http.get("/v1/suppressions", headers=reader).json() == {"suppressions": [], "next_page_token": ""}


def cli(account: Account, *args: str, key: str | None = None, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = base_env(address=account.stack.address, api_key=key or account.admin_key)
    return subprocess.run([POSTWIRE, "suppressions", *args], input=stdin, env=env, cwd=REPO, capture_output=True,
                          text=True, timeout=60)


def test_the_cli_lists_gets_adds_and_removes(account: Account) -> None:
    added = cli(account, "add", "Cli@Example.com", "--reason", "from the CLI")
    assert added.returncode == 0, added.stderr
    assert added.stdout == "Cli@Example.com  added\n"
    more = cli(account, "add", "--file", "-", stdin="one@example.org\n\nnot an address\ncli@example.com\n")
    assert more.returncode == 1
    lines = more.stdout.splitlines()
    assert lines[0] == "one@example.org  added"
    assert lines[1].startswith("not an address  failed  ")
    assert lines[2] == "cli@example.com  already suppressed (manual)"
    assert more.stderr.strip() == "error: 1 address failed; the others were done"

    listed = cli(account, "list", key=account.read_key)
    assert listed.returncode == 0, listed.stderr
    rows = listed.stdout.splitlines()
    assert rows[0].split() == ["ADDRESS", "KIND", "CREATED", "MESSAGE", "REASON"]
    assert {r.split()[0] for r in rows[1:]} == {"cli@example.com", "one@example.org"}
    assert "from the CLI" in next(r for r in rows if r.startswith("cli@"))
    only = cli(account, "list", "--prefix", "one", "--json", key=account.read_key)
    assert only.returncode == 0 and only.stdout.count("\n") == 1 and '"address": "one@example.org"' in only.stdout
    got = cli(account, "get", "CLI@example.com", "--json", key=account.read_key)
    assert got.returncode == 0 and '"kind": "SUPPRESSION_KIND_MANUAL"' in got.stdout

    missing = cli(account, "get", "nobody@example.com")
    assert missing.returncode == 1 and missing.stdout == ""
    assert missing.stderr.strip() == "error: NOT_FOUND: nobody@example.com is not on the suppression list"
    denied = cli(account, "add", "x@example.com", key=account.read_key)
    assert denied.returncode == 1 and denied.stderr.startswith("error: PERMISSION_DENIED: ")
    assert len(denied.stderr.strip().splitlines()) == 1
    bad_kind = cli(account, "list", "--kind", "nope")
    assert bad_kind.returncode == 1 and "unknown suppression kind" in bad_kind.stderr

    removed = cli(account, "remove", "cli@example.com", "one@example.org")
    assert removed.returncode == 0, removed.stderr
    assert removed.stdout.splitlines() == ["cli@example.com  removed: mail to it is sent again",
                                           "one@example.org  removed: mail to it is sent again"]
    assert cli(account, "list").stdout.strip() == "no suppressed addresses"
