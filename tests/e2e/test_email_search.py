"""ListEmails on the session stack: each filter through gRPC, JSON through the real
Envoy, pages while other emails are being accepted, tokens bound to their filters and
account, page_size bounds, tenants, the read scope, pruned content, and the CLI."""

from __future__ import annotations

import base64
import json
import secrets
import subprocess
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import httpx
import psycopg
import pytest

from postwire.v1 import email_pb2
from postwire_client import AsyncClient, Client, InvalidArgument, PermissionDenied
from tests.conftest import Stack
from tests.e2e.test_keys_and_limits import create_key
from tests.support.envoy import run_envoy
from tests.support.processes import POSTWIRE, REPO, base_env

SCHEDULED, CANCELED = email_pb2.EMAIL_STATUS_SCHEDULED, email_pb2.EMAIL_STATUS_CANCELED


class Account:
    """A fresh account with a send+read key, a read-only key and a send-only key."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.name = f"search-{secrets.token_hex(3)}"
        self.key = create_key(stack, self.name, "--scope", "send", "--scope", "read")
        self.read_key = create_key(stack, self.name, "--scope", "read")
        self.send_key = create_key(stack, self.name, "--scope", "send")

    def client(self, key: str | None = None) -> Client:
        return Client(self.stack.address, key or self.key)

    def sql(self, statement: str, *params: object) -> None:
        with psycopg.connect(self.stack.env["POSTWIRE_DATABASE_URL"].replace("+psycopg", "")) as conn:
            conn.execute(statement, params)


@pytest.fixture
def account(stack: Stack) -> Account:
    return Account(stack)


@pytest.fixture
def client(account: Account) -> Iterator[Client]:
    with account.client() as c:
        yield c


def later() -> datetime:
    """Scheduled a day ahead: the emails stay put (SCHEDULED) while the test reads them."""
    return datetime.now(UTC) + timedelta(days=1)


def send(client: Client, to: str = "rcpt@example.com", **extra: object) -> str:
    fields: dict[str, object] = dict(from_address="App <app@example.com>", to=[to], subject="Hello", text_body="Hi",
                                     send_at=later())
    fields.update(extra)
    return client.send(**fields).message_id  # type: ignore[arg-type]


def ids(client: Client, **filters: object) -> list[str]:
    return [e.message_id for e in client.iter_emails(**filters)]


def test_each_filter_through_grpc(account: Account, client: Client) -> None:
    plain = send(client)
    tagged = send(client, tags=["welcome", "onboarding"])
    meta = send(client, metadata={"plan": "pro", "user": "42"})
    to_ada = send(client, to="Ada Lovelace <Ada@Example.COM>", cc=["cc@example.com"])
    bcc_ada = send(client, bcc=["ada@example.com"])
    news = send(client, from_address="news@example.org", tags=["welcome"])
    canceled = send(client)
    client.cancel_scheduled(canceled)
    account.sql("UPDATE emails SET template_id = 'tpl_welcome', template_version = 3, template_variant = 'b'"
                " WHERE public_id = %s", tagged)

    assert ids(client) == [canceled, news, bcc_ada, to_ada, meta, tagged, plain]
    assert ids(client, status="canceled") == [canceled]
    assert ids(client, status=[SCHEDULED, CANCELED]) == [canceled, news, bcc_ada, to_ada, meta, tagged, plain]
    assert ids(client, recipient="ADA@example.com") == [bcc_ada, to_ada]
    assert ids(client, recipient="cc@example.com") == [to_ada]
    assert ids(client, from_address="News@Example.org") == [news]
    assert ids(client, tag="welcome") == [news, tagged]
    assert ids(client, tag=["welcome", "onboarding"]) == [tagged]
    assert ids(client, metadata={"plan": "pro"}) == [meta]
    assert ids(client, metadata=["plan=pro", "user=41"]) == []
    assert ids(client, template_id="tpl_welcome") == [tagged]
    assert ids(client, tag="welcome", from_address="app@example.com", status="scheduled") == [tagged]
    now = datetime.now(UTC)
    assert len(ids(client, created_after=now - timedelta(minutes=5), created_before=now + timedelta(minutes=1))) == 7
    assert ids(client, created_before=now - timedelta(minutes=5)) == []

    [summary] = client.list_emails(tag="onboarding").emails
    assert summary.status == SCHEDULED and summary.from_address == "App <app@example.com>"
    assert list(summary.tags) == ["welcome", "onboarding"] and summary.subject == "Hello"
    assert (summary.template_id, summary.template_version, summary.template_variant) == ("tpl_welcome", 3, "b")
    assert summary.created_at.seconds and summary.updated_at.seconds
    [with_ada] = client.list_emails(recipient="ada@example.com", page_size=1, status="scheduled",
                                    page_token=client.list_emails(recipient="ada@example.com", status="scheduled",
                                                                  page_size=1).next_page_token).emails
    assert with_ada.message_id == to_ada
    assert list(with_ada.to) == ["Ada Lovelace <Ada@example.com>"] and list(with_ada.cc) == ["cc@example.com"]
    assert not client.list_emails(recipient="ada@example.com").emails[0].to[0].startswith("ada")  # bcc not shown


@pytest.mark.parametrize(("filters", "field"), [
    ({"recipient": "not an address"}, "recipient"),
    ({"from_address": "Name <a@example.com>"}, "from_address"),
    ({"metadata": ["novalue"]}, "metadata[0]"),
    ({"tag": [""]}, "tag[0]"),
    ({"status": [99]}, "status[0]"),
    ({"page_size": -1}, "page_size"),
    ({"page_token": "garbage"}, "page_token"),
    ({"created_after": datetime(2026, 1, 2, tzinfo=UTC), "created_before": datetime(2026, 1, 1, tzinfo=UTC)},
     "created_before"),
])
def test_bad_filters_are_invalid_argument_naming_the_field(client: Client, filters: dict[str, object],
                                                           field: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        client.list_emails(**filters)
    assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert field in [v.field for v in caught.value.violations]


def test_pages_stay_exact_while_emails_are_accepted(account: Account, client: Client) -> None:
    existing = [r.accepted.message_id for r in client.send_batch([
        client_request(n) for n in range(230)
    ])]
    stop = threading.Event()
    added: list[str] = []

    def keep_sending() -> None:
        with account.client() as other:
            while not stop.is_set():
                added.extend(r.accepted.message_id for r in other.send_batch([client_request(n) for n in range(20)]))

    sender = threading.Thread(target=keep_sending)
    sender.start()
    try:
        seen, times, token, pages = [], [], "", 0
        while True:
            page = client.list_emails(tag="paged", page_size=25, page_token=token)
            seen += [e.message_id for e in page.emails]
            times += [(e.created_at.ToNanoseconds(), e.message_id) for e in page.emails]
            pages += 1
            token = page.next_page_token
            if not token:
                break
    finally:
        stop.set()
        sender.join()
    assert added, "nothing was accepted while paging"
    assert len(seen) == len(set(seen))  # no duplicates
    assert set(existing) <= set(seen)  # no email that existed when paging started was skipped
    assert pages >= 10
    assert [t for t, _ in times] == sorted((t for t, _ in times), reverse=True)  # newest first
    assert [m for m in seen if m in set(existing)] == existing[::-1]  # in a batch, the later email first


def client_request(n: int) -> dict[str, object]:
    from postwire.v1 import email_service_pb2 as pb
    return pb.SendRequest(from_address="app@example.com", to=[f"p{n}@example.com"], subject=f"p{n}", text_body="x",
                          tags=["paged"], send_at=_ts(later()))  # type: ignore[return-value]


def _ts(value: datetime) -> object:
    from google.protobuf.timestamp_pb2 import Timestamp
    stamp = Timestamp()
    stamp.FromDatetime(value)
    return stamp


def _edited(token: str) -> str:
    payload = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    payload["k"] += 1
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


def test_tokens_only_work_with_their_filters_and_account(stack: Stack, account: Account, client: Client) -> None:
    for _ in range(3):
        send(client, tags=["t"])
    token = client.list_emails(tag="t", page_size=1).next_page_token
    assert token and len(client.list_emails(tag="t", page_token=token).emails) == 2
    for changed in ({"tag": "u"}, {}, {"tag": "t", "status": "scheduled"}):
        with pytest.raises(InvalidArgument, match="other filters"):
            client.list_emails(**changed, page_token=token)
    for bad in (_edited(token), token[:-3], token + "x"):
        with pytest.raises(InvalidArgument) as caught:
            client.list_emails(tag="t", page_token=bad)
        assert [v.field for v in caught.value.violations] == ["page_token"]
    other = Account(stack)
    send(other.client(), tags=["t"])
    with pytest.raises(InvalidArgument, match="other filters"):
        other.client().list_emails(tag="t", page_token=token)


def test_page_size_defaults_to_50_and_is_clamped_to_1000(client: Client) -> None:
    client.send_batch([client_request(n) for n in range(60)])
    assert len(client.list_emails().emails) == 50
    page = client.list_emails(page_size=5000)
    assert len(page.emails) == 60 and page.next_page_token == ""
    assert len(client.list_emails(page_size=7).emails) == 7


def test_accounts_never_see_each_others_emails(stack: Stack, account: Account, client: Client) -> None:
    mine = send(client, to="shared@example.com", tags=["shared"], metadata={"k": "v"})
    other = Account(stack)
    with other.client() as theirs:
        assert ids(theirs) == []
        for filters in ({"recipient": "shared@example.com"}, {"tag": "shared"}, {"metadata": {"k": "v"}},
                        {"from_address": "app@example.com"}):
            assert ids(theirs, **filters) == []
        their_own = send(theirs, to="shared@example.com")
        assert ids(theirs, recipient="shared@example.com") == [their_own]
    assert ids(client, recipient="shared@example.com") == [mine]


def test_listing_needs_the_read_scope(account: Account) -> None:
    with account.client(account.send_key) as sender, pytest.raises(PermissionDenied):
        sender.list_emails()
    with account.client(account.read_key) as reader:
        assert reader.list_emails().emails == []


def test_emails_with_pruned_content_are_still_found(account: Account, client: Client) -> None:
    message_id = send(client, to="pruned@example.com", tags=["receipt"], metadata={"order": "7"})
    account.sql("UPDATE emails SET content = '{}', content_pruned_at = now() WHERE public_id = %s", message_id)
    for filters in ({"recipient": "pruned@example.com"}, {"from_address": "app@example.com"}, {"tag": "receipt"},
                    {"metadata": {"order": "7"}}):
        [found] = client.list_emails(**filters).emails
        assert found.message_id == message_id and found.HasField("content_pruned_at")


def test_json_through_envoy(account: Account, client: Client, tmp_path: Path) -> None:
    welcome = send(client, to="json@example.com", tags=["welcome"], metadata={"plan": "pro"})
    other = send(client, tags=["welcome"])
    client.cancel_scheduled(other)
    port = int(account.stack.address.rsplit(":", 1)[1])
    headers = {"x-api-key": account.read_key}
    with run_envoy(port, tmp_path) as envoy, httpx.Client(base_url=envoy.base_url, timeout=10) as http:
        got = http.get("/v1/emails", headers=headers, params={"status": "EMAIL_STATUS_SCHEDULED", "tag": "welcome"})
        assert got.status_code == 200, got.text
        [email] = got.json()["emails"]
        assert email["message_id"] == welcome and email["status"] == "EMAIL_STATUS_SCHEDULED"
        assert email["metadata"] == {"plan": "pro"} and email["to"] == ["json@example.com"]
        assert email["created_at"].endswith("Z")
        both = http.get("/v1/emails", headers=headers,
                        params=[("status", "EMAIL_STATUS_SCHEDULED"), ("status", "EMAIL_STATUS_CANCELED"),
                                ("page_size", "1")]).json()
        assert [e["message_id"] for e in both["emails"]] == [other] and both["next_page_token"]
        rest = http.get("/v1/emails", headers=headers,
                        params=[("status", "EMAIL_STATUS_SCHEDULED"), ("status", "EMAIL_STATUS_CANCELED"),
                                ("page_token", both["next_page_token"])]).json()
        assert [e["message_id"] for e in rest["emails"]] == [welcome] and rest["next_page_token"] == ""
        by_meta = http.get("/v1/emails", headers=headers, params={"metadata": "plan=pro", "recipient": "JSON@example.com",
                                                                 "created_after": "2000-01-01T00:00:00Z"}).json()
        assert [e["message_id"] for e in by_meta["emails"]] == [welcome]
        bad = http.get("/v1/emails", headers=headers, params={"recipient": "nope"})
        assert bad.status_code == 400
        assert bad.json()["details"][0]["field_violations"][0]["field"] == "recipient"
        assert http.get("/v1/emails", headers={"x-api-key": account.send_key}).status_code == 403
        # GetStatus still answers under /v1/emails/{message_id}
        assert http.get(f"/v1/emails/{welcome}", headers=headers).json()["message_id"] == welcome


async def test_the_async_client_pages_through_every_match(account: Account, client: Client) -> None:
    sent = [r.accepted.message_id for r in client.send_batch([client_request(n) for n in range(7)])]
    async with AsyncClient(account.stack.address, account.read_key) as aclient:
        page = await aclient.list_emails(tag="paged", page_size=3)
        assert len(page.emails) == 3 and page.next_page_token
        assert [e.message_id async for e in aclient.iter_emails(tag="paged", page_size=3)] == sent[::-1]


def cli(account: Account, *args: str) -> subprocess.CompletedProcess[str]:
    env = base_env(address=account.stack.address, api_key=account.read_key)
    return subprocess.run([POSTWIRE, "emails", "list", *args], env=env, cwd=REPO, capture_output=True, text=True,
                          timeout=60)


def test_the_cli_lists_with_filters(account: Account, client: Client) -> None:
    tagged = send(client, to="cli@example.com", tags=["cli"], metadata={"k": "v"})
    send(client)
    listed = cli(account, "--tag", "cli", "--meta", "k=v", "--status", "scheduled", "--to", "CLI@example.com",
                 "--from", "app@example.com", "--after", "2000-01-01T00:00:00+00:00")
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0].split()[:3] == ["MESSAGE", "STATUS", "CREATED"] and len(lines) == 2
    assert lines[1].split()[:2] == [tagged, "scheduled"]
    assert json.loads(cli(account, "--json", "--limit", "1").stdout)["message_id"] != tagged
    assert cli(account, "--tag", "none-such").stdout == "no emails match\n"
    bad = cli(account, "--status", "lost")
    assert bad.returncode != 0 and "unknown email status" in bad.stderr and "Traceback" not in bad.stderr
    bad = cli(account, "--to", "not an address")
    assert bad.returncode != 0 and "recipient" in bad.stderr and "Traceback" not in bad.stderr
