"""One-click unsubscribe (RFC 8058) on a stack of its own, through a real Envoy.

The stack relays to an in-process SMTP recorder, has POSTWIRE_PUBLIC_URL and a
fallback return-path domain set (so messages carry both the https link and the
mailto), and trusts Envoy's x-forwarded-for. A DNS server holds the DKIM keys of the
verified domain, so signatures are checked by an independent verifier (dkimpy).
"""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from core.returns.tokens import BOUNCE, UNSUBSCRIBE, Claim, Tokens
from postwire.v1 import email_pb2, event_pb2
from postwire.v1 import email_service_pb2 as epb
from postwire_client import Client
from postwire_client.errors import InvalidArgument
from tests.support import dkim_judge
from tests.support.dns import DnsServer
from tests.support.domains import verified_domain
from tests.support.envoy import EnvoyInfo, run_envoy
from tests.support.keys import make_key
from tests.support.ports import free_port
from tests.support.processes import run, running_stack
from tests.support.smtp import Recorder, SmtpServer
from tests.support.stack import fresh_database, fresh_queue_prefix, stack_env

PUBLIC_URL = "https://pw.example.com"
FALLBACK = "bounces.example.net"
FORM = {"content-type": "application/x-www-form-urlencoded"}
ONE_CLICK = "List-Unsubscribe=One-Click"
FINAL = {email_pb2.EMAIL_STATUS_SENT, email_pb2.EMAIL_STATUS_SUPPRESSED, email_pb2.EMAIL_STATUS_BOUNCED,
         email_pb2.EMAIL_STATUS_FAILED}


@dataclass
class UnsubStack:
    address: str
    env: dict[str, str]
    recorder: Recorder
    dns: DnsServer
    envoy: EnvoyInfo
    key: str  # account "unsub-a", every scope
    key_b: str  # account "unsub-b"
    key_c: str  # account "unsub-c": unsubscribe headers by default

    def client(self, key: str | None = None) -> Client:
        return Client(self.address, key or self.key)

    @property
    def tokens(self) -> Tokens:
        return Tokens(self.env["POSTWIRE_SECRET_KEY"])


@pytest.fixture(scope="module")
def us(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UnsubStack]:
    logs = tmp_path_factory.mktemp("unsub-stack")
    grpc_port = free_port()
    with (SmtpServer() as smtp, DnsServer() as dns, fresh_database("postwire_unsub") as database_url,
          fresh_queue_prefix("unsub") as prefix):
        env = stack_env(
            database_url=database_url, queue_prefix=prefix, grpc_port=grpc_port,
            smtp_relays=json.dumps([{"host": "127.0.0.1", "port": smtp.port, "timeout": 2}]),
            public_url=PUBLIC_URL, return_path_domain=FALLBACK, trusted_proxies='["127.0.0.1"]',
            dns_servers=json.dumps([dns.host]), dns_port=str(dns.port), dns_timeout="1",
            sending_host="mta.example.com", metrics_port="0", worker_metrics_port="0",
        )
        run(["migrate"], env)
        scopes = ["--scope", "send", "--scope", "read", "--scope", "events", "--scope", "admin"]
        keys = [make_key(env, a, *scopes, name="k")
                for a in ("unsub-a", "unsub-b", "unsub-c")]
        assert "on" in run(["accounts", "set-unsubscribe-default", "unsub-c", "on"], env)
        with running_stack(env, logs, f"127.0.0.1:{grpc_port}"), run_envoy(grpc_port, logs) as envoy:
            yield UnsubStack(f"127.0.0.1:{grpc_port}", env, smtp.recorder, dns, envoy, *keys)


def _send(stack: UnsubStack, to: list[str], key: str | None = None, sender: str = "news@example.com",
          **fields: object) -> str:
    with stack.client(key) as client:
        return client.send(epb.SendRequest(from_address=sender, to=to, subject="news", text_body="hello",
                                           **fields)).message_id  # type: ignore[arg-type]


def _final(stack: UnsubStack, message_id: str, key: str | None = None) -> epb.GetStatusResponse:
    deadline = time.monotonic() + 30
    with stack.client(key) as client:
        while True:
            status = client.get_status(message_id)
            if status.status in FINAL or time.monotonic() > deadline:
                return status
            time.sleep(0.1)


def _link(stack: UnsubStack, message_id: str) -> str:
    """The path of the https link in the delivered message's List-Unsubscribe."""
    header = str(stack.recorder.wait_for(message_id).message["List-Unsubscribe"])
    url = re.match(r"<(https://[^>]+)>", header)
    assert url, header
    return url.group(1).removeprefix(PUBLIC_URL)


def _types(status: epb.GetStatusResponse) -> list[int]:
    return [e.type for e in status.events]


def _raw_header(data: bytes, name: str) -> str:
    head = data.split(b"\r\n\r\n", 1)[0].decode("ascii")
    found = re.search(rf"^{name}:([^\r\n]*(?:\r\n[ \t][^\r\n]*)*)", head, re.MULTILINE | re.IGNORECASE)
    assert found, name
    return found.group(1)


def _verified_domain(stack: UnsubStack) -> str:
    with stack.client() as client:
        return verified_domain(client, stack.dns)


# The headers ------------------------------------------------------------------------------


def test_headers_are_exact_unencoded_and_dkim_signed(us: UnsubStack) -> None:
    domain = _verified_domain(us)
    message_id = _send(us, ["reader@example.org"], sender=f"news@{domain}", unsubscribe=True)
    data = us.recorder.wait_for(message_id).data
    link, mailto = re.fullmatch(r" ?<(.+)>, ?\s*<(.+)>", _raw_header(data, "List-Unsubscribe").replace("\r\n", "")).groups()
    token = link.removeprefix(f"{PUBLIC_URL}/v1/unsubscribe/")
    assert mailto == f"mailto:u+{token}@bounces.{domain}?subject=unsubscribe"
    claim = us.tokens.read(token, UNSUBSCRIBE)
    assert claim is not None and (claim.message_id, claim.recipient) == (message_id, 0)
    assert "=?" not in _raw_header(data, "List-Unsubscribe")
    assert _raw_header(data, "List-Unsubscribe-Post").strip() == ONE_CLICK
    signature = re.sub(r"\s+", "", _raw_header(data, "DKIM-Signature"))
    signed = re.search(r";h=([^;]+)", signature)
    assert signed and {"list-unsubscribe", "list-unsubscribe-post"} <= set(signed.group(1).lower().split(":"))
    assert [v.result for v in dkim_judge.dkimpy(data, us.dns)] == ["pass"]


def test_no_headers_unless_asked(us: UnsubStack) -> None:
    message_id = _send(us, ["plain@example.org"])
    assert us.recorder.wait_for(message_id).message["List-Unsubscribe"] is None


def test_several_recipients_with_unsubscribe_are_refused(us: UnsubStack) -> None:
    with pytest.raises(InvalidArgument) as caught:
        _send(us, ["one@example.org"], cc=["two@example.org"], unsubscribe=True)
    [violation] = caught.value.violations
    assert violation.field == "unsubscribe" and "send one email per recipient" in violation.description


def test_account_default_and_its_explicit_override(us: UnsubStack) -> None:
    by_default = _send(us, ["default@example.org"], key=us.key_c)
    assert us.recorder.wait_for(by_default).message["List-Unsubscribe-Post"] == ONE_CLICK
    overridden = _send(us, ["override@example.org"], key=us.key_c, unsubscribe=False)
    assert us.recorder.wait_for(overridden).message["List-Unsubscribe"] is None
    several = _send(us, ["s1@example.org", "s2@example.org"], key=us.key_c)  # the default skips it
    assert us.recorder.wait_for(several).message["List-Unsubscribe"] is None


# The link ---------------------------------------------------------------------------------


def test_get_changes_nothing_post_unsubscribes_once(us: UnsubStack) -> None:
    address = f"leaver-{secrets.token_hex(3)}@example.org"
    message_id = _send(us, [address], unsubscribe=True)
    path = _link(us, message_id)
    with httpx.Client(base_url=us.envoy.base_url, timeout=10) as http:
        shown = http.get(path)
        assert shown.status_code == 200 and shown.headers["content-type"].startswith("text/html")
        assert '<form method="post">' in shown.text and 'name="List-Unsubscribe" value="One-Click"' in shown.text
        assert address not in shown.text  # masked
        time.sleep(0.5)
        assert event_pb2.EVENT_TYPE_UNSUBSCRIBED not in _types(_final(us, message_id))

        done = http.post(path, content=ONE_CLICK, headers=FORM)  # no cookies, no key
        assert done.status_code == 200 and "Unsubscribed" in done.text, done.text
        again = http.post(path, content=ONE_CLICK, headers=FORM)
        assert again.status_code == 200 and again.text == done.text

        status = _final(us, message_id)
        unsubscribed = [e for e in status.events if e.type == event_pb2.EVENT_TYPE_UNSUBSCRIBED]
        assert [e.recipient for e in unsubscribed] == [address]

        with us.client() as client:
            streamed = [e for e in client.stream_events(message_ids=[message_id], idle_timeout=2)]
        assert [e.cursor for e in streamed] == [e.cursor for e in status.events]
        lines = []
        with http.stream("GET", "/v1/events", headers={"x-api-key": us.key},
                         params={"message_ids": message_id, "types": "EVENT_TYPE_UNSUBSCRIBED"}) as stream:
            assert stream.status_code == 200
            for line in stream.iter_lines():
                if line.strip():
                    lines.append(json.loads(line)["event"])
                    break
        assert lines[0]["cursor"] == unsubscribed[0].cursor and lines[0]["recipient"] == address

    later = _final(us, _send(us, [address]))
    assert later.status == email_pb2.EMAIL_STATUS_SUPPRESSED
    other_account = _final(us, _send(us, [address], key=us.key_b), key=us.key_b)
    assert other_account.status == email_pb2.EMAIL_STATUS_SENT  # tenants are isolated


def test_the_pages_button_and_multipart_bodies_work(us: UnsubStack) -> None:
    with httpx.Client(base_url=us.envoy.base_url, timeout=10) as http:
        form = _link(us, _send(us, [f"button-{secrets.token_hex(3)}@example.org"], unsubscribe=True))
        assert http.post(form, data={"List-Unsubscribe": "One-Click"}).status_code == 200  # what the button sends
        multipart = _link(us, _send(us, [f"multi-{secrets.token_hex(3)}@example.org"], unsubscribe=True))
        posted = http.post(multipart, files={"List-Unsubscribe": (None, "One-Click")})
        assert posted.status_code == 200, posted.text


def test_forged_and_unknown_tokens_are_not_found(us: UnsubStack) -> None:
    message_id = _send(us, [f"forge-{secrets.token_hex(3)}@example.org"], unsubscribe=True)
    token = _link(us, message_id).rsplit("/", 1)[1]
    tokens = us.tokens
    real = tokens.read(token, UNSUBSCRIBE)
    assert real is not None
    flipped = token[:-1] + ("a" if token[-1] != "a" else "b")
    bounce = tokens.make(Claim(BOUNCE, real.account_id, message_id, 0))  # genuine, but not an unsubscribe token
    elsewhere = tokens.make(Claim(UNSUBSCRIBE, real.account_id + 1, message_id, 0))  # another account
    no_recipient = tokens.make(Claim(UNSUBSCRIBE, real.account_id, message_id, 5))
    with httpx.Client(base_url=us.envoy.base_url, timeout=10) as http:
        for bad in (flipped, bounce, elsewhere, no_recipient, "nothing", "a" * 300):
            assert http.get(f"/v1/unsubscribe/{bad}").status_code == 404, bad
            assert http.post(f"/v1/unsubscribe/{bad}", content=ONE_CLICK, headers=FORM).status_code == 404, bad
    assert event_pb2.EVENT_TYPE_UNSUBSCRIBED not in _types(_final(us, message_id))


def test_bad_bodies_are_invalid_argument(us: UnsubStack) -> None:
    message_id = _send(us, [f"body-{secrets.token_hex(3)}@example.org"], unsubscribe=True)
    path = _link(us, message_id)
    with httpx.Client(base_url=us.envoy.base_url, timeout=10) as http:
        for body, headers in (("", FORM), ("List-Unsubscribe=Yes", FORM), ('{"List-Unsubscribe": "One-Click"}',
                              {"content-type": "application/json"}), ("\xff\xfe", FORM)):
            answer = http.post(path, content=body.encode("latin-1"), headers=headers)
            assert answer.status_code == 400, (body, answer.text)
            details = answer.json()["details"][0]["field_violations"]
            assert details[0]["field"] == "body"
    assert event_pb2.EVENT_TYPE_UNSUBSCRIBED not in _types(_final(us, message_id))
