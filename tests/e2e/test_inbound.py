"""What comes back by mail, end to end on a stack of its own: mail really sent through
Postwire (so the email exists and its VERP return path is in the relay's MAIL FROM),
then real SMTP clients (smtplib and swaks) deliver the receivers' reports to the real
`postwire inbound` listener, and real workers parse them.

The stack relays to an in-process recorder and sends from unverified domains, so its
return path domain is POSTWIRE_RETURN_PATH_DOMAIN (RETURN_DOMAIN).
"""

from __future__ import annotations

import asyncio
import secrets
import smtplib
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import httpx
import psycopg
import pytest

from core.returns.tokens import BOUNCE, UNSUBSCRIBE, Claim, Tokens
from postwire.v1 import email_pb2, event_pb2, webhook_service_pb2_grpc
from postwire.v1 import webhook_service_pb2 as wpb
from postwire_client import Client
from tests.support.keys import make_key
from tests.support.ports import free_port
from tests.support.processes import (
    Process,
    base_env,
    run,
    running_stack,
    wait_listening,
    wait_serving,
)
from tests.support.reports import report
from tests.support.smtp import Recorder, SmtpServer
from tests.support.stack import fresh_database, fresh_queue_prefix, stack_env
from tests.support.webhooks import Receiver

E, S = event_pb2, email_pb2
RETURN_DOMAIN = "bounces.example.com"
MAX_BYTES = 200_000


@dataclass
class InboundStack:
    address: str
    env: dict[str, str]
    database: str  # psycopg URL
    inbound_port: int
    metrics_port: int
    recorder: Recorder
    key_a: str
    key_b: str
    tokens: Tokens
    logs: Path

    def client(self, key: str | None = None) -> Client:
        return Client(self.address, key or self.key_a)


@pytest.fixture(scope="module")
def inbound(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InboundStack]:
    logs = tmp_path_factory.mktemp("inbound-stack")
    grpc_port, inbound_port, metrics_port = free_port(), free_port(), free_port()
    with SmtpServer() as relay, fresh_database("postwire_inbound") as database_url, \
            fresh_queue_prefix("inbound") as prefix:
        env = stack_env(
            database_url=database_url, queue_prefix=prefix, grpc_port=grpc_port,
            smtp_relays=f'[{{"host": "127.0.0.1", "port": {relay.port}, "timeout": 2}}]',
            return_path_domain=RETURN_DOMAIN, inbound_port=str(inbound_port), inbound_max_bytes=str(MAX_BYTES),
            inbound_timeout="5", metrics_port="0", worker_metrics_port=str(metrics_port),
        )
        run(["migrate"], env)
        key_a = make_key(env, "in-a", name="a")
        key_b = make_key(env, "in-b", name="b")
        with running_stack(env, logs, f"127.0.0.1:{grpc_port}"):
            listener = Process(["inbound"], env, logs / "inbound.log")
            try:
                wait_listening(inbound_port, listener)
                yield InboundStack(f"127.0.0.1:{grpc_port}", env, database_url.replace("+psycopg", ""), inbound_port,
                                   metrics_port, relay.recorder, key_a, key_b, Tokens(env["POSTWIRE_SECRET_KEY"]), logs)
            finally:
                listener.stop()


# Helpers -----------------------------------------------------------------------------------


def _address(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(3)}@example.org"


def _sent(stack: InboundStack, to: list[str], key: str | None = None) -> tuple[str, str]:
    """Send through the stack; (message id, the VERP envelope sender the relay saw) once SENT."""
    with stack.client(key) as client:
        message_id = client.send(from_address="app@example.com", to=to, subject="hello", text_body="hi").message_id
        received = stack.recorder.wait_for(message_id)
        _wait_status(client, message_id, {S.EMAIL_STATUS_SENT})
    return message_id, received.mail_from


def _wait_status(client: Client, message_id: str, wanted: set[int], timeout: float = 20) -> Any:
    deadline = time.monotonic() + timeout
    while (status := client.get_status(message_id)).status not in wanted:
        assert time.monotonic() < deadline, status
        time.sleep(0.1)
    return status


def _wait_event(stack: InboundStack, message_id: str, kind: int, key: str | None = None, timeout: float = 20) -> Any:
    with stack.client(key) as client:
        deadline = time.monotonic() + timeout
        while True:
            status = client.get_status(message_id)
            if any(e.type == kind for e in status.events):
                # Once more: GetStatus reads the row and then its events, so one read may
                # see a change's event but not yet its row.
                return client.get_status(message_id)
            assert time.monotonic() < deadline, status
            time.sleep(0.1)


def _crlf(raw: bytes) -> bytes:
    return raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")  # what SMTP carries (smtplib leaves bytes alone)


def _deliver(stack: InboundStack, rcpt: str, raw: bytes, sender: str = "") -> None:
    with smtplib.SMTP("127.0.0.1", stack.inbound_port, timeout=10) as smtp:
        smtp.sendmail(sender, [rcpt], _crlf(raw))


def _swaks(stack: InboundStack, rcpt: str, raw: bytes, tmp_path: Path) -> str:
    path = tmp_path / "report.eml"
    path.write_bytes(raw)
    result = subprocess.run(["swaks", "--server", f"127.0.0.1:{stack.inbound_port}", "--from", "", "--to", rcpt,
                             "--data", f"@{path}", "--timeout", "10"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def _reports(stack: InboundStack, rcpt: str) -> list[tuple[str, str]]:
    with psycopg.connect(stack.database) as conn:
        rows = conn.execute("SELECT state, detail FROM inbound_reports WHERE rcpt_to = %s ORDER BY id", (rcpt,))
        return [(r[0], r[1]) for r in rows]


def _wait_reports(stack: InboundStack, rcpt: str, count: int, timeout: float = 20) -> list[tuple[str, str]]:
    deadline = time.monotonic() + timeout
    while True:
        rows = _reports(stack, rcpt)
        if len(rows) >= count and all(state != "received" for state, _ in rows):
            return rows
        assert time.monotonic() < deadline, rows
        time.sleep(0.1)


def _suppressed(stack: InboundStack, address: str, key: str | None = None) -> bool:
    """A later email to the address ends SUPPRESSED, unsent."""
    with stack.client(key) as client:
        message_id = client.send(from_address="app@example.com", to=[address], subject="again", text_body="x").message_id
        status = _wait_status(client, message_id, {S.EMAIL_STATUS_SUPPRESSED, S.EMAIL_STATUS_SENT})
    return bool(status.status == S.EMAIL_STATUS_SUPPRESSED)


def _rcpt_reply(stack: InboundStack, rcpt: str) -> int:
    with smtplib.SMTP("127.0.0.1", stack.inbound_port, timeout=10) as smtp:
        smtp.ehlo("receiver.example.org")
        smtp.mail("")
        return int(smtp.rcpt(rcpt)[0])


def _metric(stack: InboundStack, state: str) -> float:
    text = httpx.get(f"http://127.0.0.1:{stack.metrics_port}/metrics", timeout=5).text
    line = f'postwire_inbound_reports_total{{state="{state}"}} '
    return next((float(x.split()[-1]) for x in text.splitlines() if x.startswith(line)), 0.0)


# Bounces -----------------------------------------------------------------------------------


def test_a_hard_bounce_bounces_and_suppresses_once(inbound: InboundStack) -> None:
    ada = _address("ada")
    message_id, return_path = _sent(inbound, [ada])
    assert return_path.startswith("b+") and return_path.endswith(f"@{RETURN_DOMAIN}")
    claim = inbound.tokens.read_address(return_path)
    assert claim is not None and claim.message_id == message_id
    raw = report("postfix_hard_bounce", return_path, ada, message_id=message_id)
    _deliver(inbound, return_path, raw)

    status = _wait_event(inbound, message_id, E.EVENT_TYPE_BOUNCED)
    assert status.status == S.EMAIL_STATUS_BOUNCED
    assert [(r.address, r.status) for r in status.recipients] == [(ada, S.EMAIL_STATUS_BOUNCED)]
    bounced = [e for e in status.events if e.type == E.EVENT_TYPE_BOUNCED]
    assert len(bounced) == 1 and bounced[0].recipient == ada and bounced[0].smtp_code == 550
    assert "5.1.1" in bounced[0].detail
    sent = next(e for e in status.events if e.type == E.EVENT_TYPE_SENT)
    with inbound.client() as client:  # resuming from the SENT event's cursor: the BOUNCED event next
        after = [e.type for e in client.stream_events(after=sent.cursor, message_ids=[message_id], idle_timeout=1.0)]
    assert after == [E.EVENT_TYPE_BOUNCED]
    assert _suppressed(inbound, ada)

    _deliver(inbound, return_path, raw)  # the same DSN again: kept, changes nothing
    rows = _wait_reports(inbound, return_path, 2)
    assert [state for state, _ in rows] == ["bounce", "ignored"] and "already recorded" in rows[1][1]
    with inbound.client() as client:
        assert [e.type for e in client.get_status(message_id).events].count(E.EVENT_TYPE_BOUNCED) == 1


def test_webhooks_receive_the_feedback_events_like_any_other(inbound: InboundStack) -> None:
    admin = make_key(inbound.env, "in-a", "--scope", "admin", name="hooks")
    with Receiver() as receiver, grpc.insecure_channel(inbound.address) as channel:
        hooks = webhook_service_pb2_grpc.WebhookServiceStub(channel)
        where = "/feedback"
        hooks.CreateWebhookEndpoint(wpb.CreateWebhookEndpointRequest(
            url=receiver.route(where), event_types=[E.EVENT_TYPE_BOUNCED, E.EVENT_TYPE_COMPLAINED],
        ), metadata=[("authorization", f"Bearer {admin}")])
        ada, bob = _address("hooked"), _address("hooked")
        bounced_id, bounced_path = _sent(inbound, [ada])
        complained_id, complained_path = _sent(inbound, [bob])
        _deliver(inbound, bounced_path, report("postfix_hard_bounce", bounced_path, ada, message_id=bounced_id))
        _deliver(inbound, f"fbl@{RETURN_DOMAIN}", report("yahoo_arf", complained_path, bob, message_id=complained_id))

        def mine(got: list[Any]) -> set[tuple[str, str, str]]:
            return {(r.payload["type"], r.payload["data"]["message_id"], r.payload["data"]["recipient"]) for r in got}

        expected = {("email.bounced", bounced_id, ada), ("email.complained", complained_id, bob)}
        got = receiver.wait_for(where, lambda g: expected <= mine(g))
        assert mine(got) == expected  # only the types asked for, each once


@pytest.mark.parametrize("fixture", ["gmail", "microsoft", "qmail", "exim_dsn"])
def test_provider_bounces_bounce(inbound: InboundStack, fixture: str) -> None:
    ada = _address(fixture)
    message_id, return_path = _sent(inbound, [ada])
    _deliver(inbound, return_path, report(fixture, return_path, ada, message_id=message_id))
    status = _wait_event(inbound, message_id, E.EVENT_TYPE_BOUNCED)
    assert status.recipients[0].status == S.EMAIL_STATUS_BOUNCED
    assert _wait_reports(inbound, return_path, 1)[0][0] == "bounce"


def test_swaks_delivers_an_exim_bounce(inbound: InboundStack, tmp_path: Path) -> None:
    ada = _address("swaks")
    message_id, return_path = _sent(inbound, [ada])
    output = _swaks(inbound, return_path, report("exim_plain", return_path, ada, message_id=message_id), tmp_path)
    assert "250 2.0.0" in output
    _wait_event(inbound, message_id, E.EVENT_TYPE_BOUNCED)


def test_a_delayed_dsn_adds_delayed_only(inbound: InboundStack) -> None:
    ada = _address("slow")
    message_id, return_path = _sent(inbound, [ada])
    _deliver(inbound, return_path, report("postfix_delayed", return_path, ada, message_id=message_id))
    status = _wait_event(inbound, message_id, E.EVENT_TYPE_DELAYED)
    assert status.status == S.EMAIL_STATUS_SENT and status.recipients[0].status == S.EMAIL_STATUS_SENT
    assert [e.type for e in status.events][-1] == E.EVENT_TYPE_DELAYED
    assert not _suppressed(inbound, ada)


def test_a_report_naming_a_non_recipient_is_ignored(inbound: InboundStack) -> None:
    ada = _address("real")
    message_id, return_path = _sent(inbound, [ada])
    _deliver(inbound, return_path, report("postfix_hard_bounce", return_path, _address("stranger")))
    [(state, detail)] = _wait_reports(inbound, return_path, 1)
    assert state == "ignored" and "not a recipient" in detail
    with inbound.client() as client:
        status = client.get_status(message_id)
    assert status.status == S.EMAIL_STATUS_SENT and E.EVENT_TYPE_BOUNCED not in [e.type for e in status.events]


def test_a_token_changes_only_its_own_accounts_email(inbound: InboundStack) -> None:
    bob = _address("bob")
    b_message, b_return_path = _sent(inbound, [bob], inbound.key_b)
    a_claim = inbound.tokens.read_address(_sent(inbound, [_address("a")])[1])
    assert a_claim is not None
    # A genuine token of account A naming account B's email.
    crossed = inbound.tokens.address(Claim(BOUNCE, a_claim.account_id, b_message), RETURN_DOMAIN)
    _deliver(inbound, crossed, report("postfix_hard_bounce", crossed, bob, message_id=b_message))
    [(state, detail)] = _wait_reports(inbound, crossed, 1)
    assert state == "ignored" and "no such email" in detail
    with inbound.client(inbound.key_b) as client:
        assert client.get_status(b_message).status == S.EMAIL_STATUS_SENT
    assert not _suppressed(inbound, bob, inbound.key_b)
    assert b_return_path != crossed


# Complaints and unsubscribes ------------------------------------------------------------------


def test_a_yahoo_feedback_report_to_fbl_complains_and_suppresses(inbound: InboundStack) -> None:
    ada = _address("complainer")
    message_id, return_path = _sent(inbound, [ada])
    _deliver(inbound, f"fbl@{RETURN_DOMAIN}", report("yahoo_arf", return_path, ada, message_id=message_id),
             sender="feedback@arf.mail.yahoo.com")
    status = _wait_event(inbound, message_id, E.EVENT_TYPE_COMPLAINED)
    assert [e.recipient for e in status.events if e.type == E.EVENT_TYPE_COMPLAINED] == [ada]
    assert status.status == S.EMAIL_STATUS_SENT
    assert _suppressed(inbound, ada)


def test_mail_to_the_unsubscribe_address_unsubscribes(inbound: InboundStack) -> None:
    ada = _address("leaver")
    message_id, return_path = _sent(inbound, [ada])
    claim = inbound.tokens.read_address(return_path)
    assert claim is not None
    mailto = inbound.tokens.address(Claim(UNSUBSCRIBE, claim.account_id, message_id, 0), RETURN_DOMAIN)
    _deliver(inbound, mailto, b"From: " + ada.encode() + b"\r\nSubject: unsubscribe\r\n\r\nplease\r\n", sender=ada)
    status = _wait_event(inbound, message_id, E.EVENT_TYPE_UNSUBSCRIBED)
    assert [e.recipient for e in status.events if e.type == E.EVENT_TYPE_UNSUBSCRIBED] == [ada]
    assert _wait_reports(inbound, mailto, 1)[0][0] == "unsubscribe"
    assert _suppressed(inbound, ada)


# What the listener refuses ---------------------------------------------------------------------


def test_only_genuine_return_addresses_at_bounce_domains_are_accepted(inbound: InboundStack) -> None:
    _, return_path = _sent(inbound, [_address("rcpt")])
    token = return_path.partition("+")[2].partition("@")[0]
    forged = token[:-1] + ("a" if token[-1] != "a" else "b")
    assert _rcpt_reply(inbound, return_path) == 250
    for local in ("fbl", "abuse", "postmaster"):
        assert _rcpt_reply(inbound, f"{local}@{RETURN_DOMAIN}") == 250
    for refused in (f"b+{forged}@{RETURN_DOMAIN}", f"u+{token}@{RETURN_DOMAIN}", f"b+{token}@bounces.other.example",
                    f"someone@{RETURN_DOMAIN}", "fbl@example.org", f"b+{token}"):
        assert _rcpt_reply(inbound, refused) == 550, refused


def test_a_report_over_the_size_limit_gets_552(inbound: InboundStack) -> None:
    _, return_path = _sent(inbound, [_address("big")])
    raw = b"Subject: big\r\n\r\n" + (b"x" * 998 + b"\r\n") * (MAX_BYTES // 1000 + 10)
    with pytest.raises((smtplib.SMTPDataError, smtplib.SMTPSenderRefused)) as caught:
        _deliver(inbound, return_path, raw)
    assert caught.value.smtp_code == 552
    with smtplib.SMTP("127.0.0.1", inbound.inbound_port, timeout=10) as smtp:
        code, features = smtp.ehlo("receiver.example.org")
        assert code == 250 and f"SIZE {MAX_BYTES}".encode() in features


# Junk and recovery -------------------------------------------------------------------------


def test_junk_is_kept_unparseable_and_counted_and_the_worker_goes_on(inbound: InboundStack) -> None:
    ada = _address("junk")
    message_id, return_path = _sent(inbound, [ada])
    before = _metric(inbound, "unparseable")
    _deliver(inbound, return_path, report("random"))
    _deliver(inbound, return_path, report("ordinary", return_path))
    rows = _wait_reports(inbound, return_path, 2)
    assert [state for state, _ in rows] == ["unparseable", "unparseable"]
    deadline = time.monotonic() + 10
    while _metric(inbound, "unparseable") < before + 2:
        assert time.monotonic() < deadline, "unparseable reports not counted"
        time.sleep(0.2)
    _deliver(inbound, return_path, report("postfix_hard_bounce", return_path, ada))  # still working
    _wait_event(inbound, message_id, E.EVENT_TYPE_BOUNCED)


def test_the_scheduler_publishes_a_report_nobody_published(inbound: InboundStack) -> None:
    ada = _address("orphan")
    message_id, return_path = _sent(inbound, [ada])
    with psycopg.connect(inbound.database) as conn:  # as if the listener crashed right after its commit
        conn.execute(
            "INSERT INTO inbound_reports (received_at, peer, mail_from, rcpt_to, raw) VALUES (now(), '', '', %s, %s)",
            (return_path, report("postfix_hard_bounce", return_path, ada)),
        )
    _wait_event(inbound, message_id, E.EVENT_TYPE_BOUNCED, timeout=30)
    assert _wait_reports(inbound, return_path, 1)[0][0] == "bounce"


def test_the_scheduler_retries_a_published_report_never_parsed_then_gives_up(inbound: InboundStack) -> None:
    ada = _address("lost")
    message_id, return_path = _sent(inbound, [ada])
    spent = inbound.tokens.address(Claim(BOUNCE, 1, "msg_spentspentspent"), RETURN_DOMAIN)
    with psycopg.connect(inbound.database) as conn:  # its message was lost; one that failed five times
        for rcpt, attempts in ((return_path, 1), (spent, 5)):
            conn.execute(
                "INSERT INTO inbound_reports (received_at, published_at, attempts, rcpt_to, raw)"
                " VALUES (now() - interval '1 hour', now() - interval '1 hour', %s, %s, %s)",
                (attempts, rcpt, report("delivered" if attempts == 5 else "gmail", rcpt, ada)),
            )
    _wait_event(inbound, message_id, E.EVENT_TYPE_BOUNCED, timeout=30)
    [(state, detail)] = _wait_reports(inbound, spent, 1)
    assert state == "unparseable" and "gave up after 5 attempts" in detail


def test_a_listener_without_its_database_answers_451(inbound: InboundStack) -> None:
    from core.delivery.queue import make_broker
    from core.settings import Settings
    from postwire_service.inbound_command import InboundService

    _, return_path = _sent(inbound, [_address("down")])
    dead = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/nothing"
    settings = Settings(secret_key=inbound.env["POSTWIRE_SECRET_KEY"], database_url=dead, broker_url="stub://",
                        return_path_domain=RETURN_DOMAIN)  # type: ignore[arg-type]

    async def attempt() -> tuple[int, int]:
        service = InboundService(settings, make_broker(settings))
        port = await service.start("127.0.0.1", 0)
        try:
            def talk() -> tuple[int, int]:
                with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
                    smtp.ehlo("receiver.example.org")
                    smtp.mail("")
                    # Is bounces.acme.example the bounce domain of a verified domain? Ask later.
                    unknown = smtp.rcpt(return_path.replace(RETURN_DOMAIN, "bounces.acme.example"))[0]
                    assert smtp.rcpt(return_path)[0] == 250  # the fallback domain needs no lookup...
                    return unknown, smtp.data(b"Subject: x\r\n\r\nx\r\n")[0]  # ...but storing needs the database

            return await asyncio.to_thread(talk)
        finally:
            await service.stop()

    assert asyncio.run(attempt()) == (451, 451)


# make dev --------------------------------------------------------------------------------


def test_dev_mode_reads_bounces_on_its_own_listener(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    grpc_port, smtp_port, inbound_port = free_port(), free_port(), free_port()
    env = base_env(grpc_port=str(grpc_port), smtp_port=str(smtp_port), inbound_port=str(inbound_port))
    dev = Process(["dev", "--no-envoy", "--data-dir", str(data_dir)], env, tmp_path / "dev.log")
    try:
        address = f"127.0.0.1:{grpc_port}"
        wait_serving(address, dev)
        wait_listening(inbound_port, dev)
        key = (data_dir / "dev-api-key").read_text().strip()
        with Client(address, key) as client:
            message_id = client.send(from_address="a@example.com", to=["b@example.com"], subject="hi",
                                     text_body="hello").message_id
            _wait_status(client, message_id, {S.EMAIL_STATUS_SENT})
            with sqlite3.connect(data_dir / "postwire.db") as db:
                [(account_id,)] = db.execute("SELECT account_id FROM emails WHERE public_id = ?", (message_id,))
            tokens = Tokens((data_dir / "secret-key").read_text().strip())
            return_path = tokens.address(Claim(BOUNCE, account_id, message_id), "bounces.localhost")
            with smtplib.SMTP("127.0.0.1", inbound_port, timeout=10) as smtp:
                smtp.sendmail("", [return_path], _crlf(report("gmail", return_path, "b@example.com")))
            _wait_status(client, message_id, {S.EMAIL_STATUS_BOUNCED})
    finally:
        dev.proc.terminate()
        dev.proc.wait(timeout=20)
        dev.stop()
