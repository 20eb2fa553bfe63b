"""SMTP submission end to end, on a stack of its own: real `postwire server`, `worker`,
`scheduler` and `postwire submission` processes relaying to an in-process recorder;
Python's smtplib (and swaks) submit over STARTTLS (587 role), implicit TLS (465 role)
and the plain port with STARTTLS (2525 role), with API keys as passwords.
"""

from __future__ import annotations

import base64
import json
import secrets
import smtplib
import ssl
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from postwire.v1 import email_pb2, event_pb2
from postwire_client import Client
from postwire_service.dev_tls import self_signed
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
from tests.support.smtp import Received, Recorder, SmtpServer
from tests.support.stack import fresh_database, fresh_queue_prefix, stack_env

E, S = event_pb2, email_pb2
MAX_BYTES = 100_000


@dataclass
class SubmissionStack:
    address: str
    database: str  # psycopg URL
    ports: dict[str, int]  # starttls, implicit, plain
    metrics_port: int
    recorder: Recorder
    keys: dict[str, str]  # live, read_only, slow, test
    cert: Path
    logs: Path

    def client(self, key: str | None = None) -> Client:
        return Client(self.address, key or self.keys["live"])


@pytest.fixture(scope="module")
def sub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SubmissionStack]:
    logs = tmp_path_factory.mktemp("submission-stack")
    cert, key = self_signed(tmp_path_factory.mktemp("tls"))
    grpc_port, metrics_port = free_port(), free_port()
    ports = {"starttls": free_port(), "implicit": free_port(), "plain": free_port()}
    with SmtpServer() as relay, fresh_database("postwire_submission") as database_url, \
            fresh_queue_prefix("submission") as prefix:
        env = stack_env(
            database_url=database_url, queue_prefix=prefix, grpc_port=grpc_port,
            smtp_relays=f'[{{"host": "127.0.0.1", "port": {relay.port}, "timeout": 2}}]',
            max_message_bytes=str(MAX_BYTES), metrics_port="0", worker_metrics_port="0",
            submission_port=str(ports["starttls"]), submission_tls_port=str(ports["implicit"]),
            submission_plain_port=str(ports["plain"]), submission_tls_cert=str(cert), submission_tls_key=str(key),
            submission_metrics_port=str(metrics_port), submission_timeout="20",
        )
        run(["migrate"], env)
        keys = {
            "live": make_key(env, "sub-a", name="live"),
            "read_only": make_key(env, "sub-a", "--scope", "read", name="ro"),
            "slow": make_key(env, "sub-a", "--send-per-minute", "2", name="slow"),
            "test": make_key(env, "sub-a", "--kind", "test", name="t"),
        }
        with running_stack(env, logs, f"127.0.0.1:{grpc_port}"):
            listener = Process(["submission"], env, logs / "submission.log")
            try:
                for port in ports.values():
                    wait_listening(port, listener)
                yield SubmissionStack(f"127.0.0.1:{grpc_port}", database_url.replace("+psycopg", ""), ports,
                                      metrics_port, relay.recorder, keys, cert, logs)
            finally:
                listener.stop()
                log = (logs / "submission.log").read_text(errors="replace")
                assert 'server/submission' not in log and "ERROR server." not in log, log  # never an error of ours
                for secret in keys.values():
                    assert secret not in log  # passwords never reach the logs


# Helpers -----------------------------------------------------------------------------------


def _address(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(3)}@example.org"


def _tls(stack: SubmissionStack) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(stack.cert))


def _connect(stack: SubmissionStack, mode: str = "starttls", key: str | None = None) -> smtplib.SMTP:
    """An authenticated session (STARTTLS first unless implicit TLS)."""
    if mode == "implicit":
        smtp: smtplib.SMTP = smtplib.SMTP_SSL("127.0.0.1", stack.ports[mode], timeout=10, context=_tls(stack))
    else:
        smtp = smtplib.SMTP("127.0.0.1", stack.ports[mode], timeout=10)
        smtp.starttls(context=_tls(stack))
    smtp.login("apikey", key or stack.keys["live"])
    return smtp


def _message(to: str, *, subject: str = "hello", message_id: str | None = None, headers: str = "",
             body: str = "Hello from SMTP.\r\n") -> bytes:
    lines = ["From: App <app@example.com>", f"To: {to}", f"Subject: {subject}",
             "Date: Mon, 07 Dec 2026 10:00:00 +0000"]
    if message_id:
        lines.append(f"Message-ID: <{message_id}>")
    lines += ["MIME-Version: 1.0", "Content-Type: text/plain; charset=utf-8", "X-App: kept as is"]
    text = "\r\n".join(lines) + "\r\n" + headers + "\r\n" + body
    return text.encode()


def _submit(smtp: smtplib.SMTP, rcpts: list[str], raw: bytes, sender: str = "app@example.com",
            options: tuple[str, ...] = ()) -> tuple[int, str]:
    """MAIL, RCPT..., DATA; the DATA reply (or the first refusal)."""
    code, reply = smtp.mail(sender, list(options))
    if code != 250:
        return code, reply.decode()
    for rcpt in rcpts:
        code, reply = smtp.rcpt(rcpt)
        if code != 250:
            smtp.rset()
            return code, reply.decode()
    code, reply = smtp.data(raw)
    return code, reply.decode()


def _raw_data(smtp: smtplib.SMTP, rcpt: str, raw: bytes) -> tuple[int, str]:
    """A DATA section sent byte for byte (smtplib's data() would fix the line ends)."""
    assert smtp.mail("app@example.com")[0] == 250
    assert smtp.rcpt(rcpt)[0] == 250
    assert smtp.docmd("DATA")[0] == 354
    smtp.send(raw + b"\r\n.\r\n")
    code, reply = smtp.getreply()
    return code, reply.decode()


def _accepted_id(code: int, reply: str) -> str:
    assert code == 250, (code, reply)
    assert reply.startswith("2.0.0 OK id="), reply
    return reply.split("id=", 1)[1].strip()


def _received(stack: SubmissionStack, rcpt: str, timeout: float = 20) -> Received:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with stack.recorder.lock:
            found = [r for r in stack.recorder.received if rcpt in r.rcpt_tos]
        if found:
            return found[0]
        time.sleep(0.05)
    raise AssertionError(f"the relay never received mail for {rcpt}")


def _wait_status(stack: SubmissionStack, message_id: str, wanted: set[int], key: str | None = None,
                 timeout: float = 20) -> Any:
    with stack.client(key) as client:
        deadline = time.monotonic() + timeout
        while (status := client.get_status(message_id)).status not in wanted:
            assert time.monotonic() < deadline, status
            time.sleep(0.1)
    return status


def _metric(stack: SubmissionStack, outcome: str) -> float:
    text = httpx.get(f"http://127.0.0.1:{stack.metrics_port}/metrics", timeout=5).text
    line = f'postwire_submission_messages_total{{outcome="{outcome}"}} '
    return next((float(x.split()[-1]) for x in text.splitlines() if x.startswith(line)), 0.0)


def _auth_plain(key: str) -> str:
    return base64.b64encode(b"\0apikey\0" + key.encode()).decode()


# Sending -----------------------------------------------------------------------------------


def test_starttls_auth_send_is_delivered_as_submitted(sub: SubmissionStack) -> None:
    ada = _address("ada")
    msgid = f"{secrets.token_hex(8)}@app.example.com"
    raw = _message(ada, subject="Invoice 42", message_id=msgid, body="Line one.\r\n.leading dot\r\n")
    before = _metric(sub, "accepted")
    with _connect(sub) as smtp:
        ehlo = smtp.ehlo("app.example.com")[1].decode()
        for extension in ("PIPELINING", "8BITMIME", "SMTPUTF8", f"SIZE {MAX_BYTES}", "AUTH"):
            assert extension in ehlo, ehlo
        message_id = _accepted_id(*_submit(smtp, [ada], raw))
    status = _wait_status(sub, message_id, {S.EMAIL_STATUS_SENT})
    assert [r.address for r in status.recipients] == [ada]
    wire = _received(sub, ada).data
    message = _received(sub, ada).message
    assert message["Message-ID"] == f"<{msgid}>"  # the submitted one is kept
    assert message["Subject"] == "Invoice 42" and message["X-App"] == "kept as is"
    assert wire.endswith(b"\r\n\r\nLine one.\r\n.leading dot\r\n"), wire
    for line in raw.split(b"\r\n\r\n")[0].split(b"\r\n"):  # every submitted header, byte for byte
        assert line in wire.split(b"\r\n"), line
    with sub.client() as client:  # the id in the 250 names the email in StreamEvents too
        events = list(client.stream_events(message_ids=[message_id], idle_timeout=1.0))
    assert {e.type for e in events} >= {E.EVENT_TYPE_QUEUED, E.EVENT_TYPE_SENT}
    assert _metric(sub, "accepted") >= before + 1


def test_implicit_tls_port(sub: SubmissionStack) -> None:
    bob = _address("bob")
    with _connect(sub, "implicit") as smtp:
        assert "STARTTLS" not in smtp.ehlo()[1].decode()
        message_id = _accepted_id(*_submit(smtp, [bob], _message(bob)))
    _wait_status(sub, message_id, {S.EMAIL_STATUS_SENT})
    assert _received(sub, bob)


def test_plain_port_offers_starttls_and_then_auth(sub: SubmissionStack) -> None:
    cy = _address("cy")
    with smtplib.SMTP("127.0.0.1", sub.ports["plain"], timeout=10) as smtp:
        ehlo = smtp.ehlo()[1].decode()
        assert "STARTTLS" in ehlo and "AUTH" not in ehlo, ehlo
        code, reply = smtp.docmd("AUTH", "PLAIN " + _auth_plain(sub.keys["live"]))
        assert code == 538, reply  # 5.7.11 encryption required
        code, reply = smtp.docmd("MAIL", "FROM:<app@example.com>")
        assert code == 530 and b"5.7.0" in reply, reply
        smtp.starttls(context=_tls(sub))
        smtp.login("apikey", sub.keys["live"])
        message_id = _accepted_id(*_submit(smtp, [cy], _message(cy)))
    _wait_status(sub, message_id, {S.EMAIL_STATUS_SENT})


def test_auth_before_tls_is_refused_on_the_starttls_port(sub: SubmissionStack) -> None:
    with smtplib.SMTP("127.0.0.1", sub.ports["starttls"], timeout=10) as smtp:
        assert "AUTH" not in smtp.ehlo()[1].decode()
        code, reply = smtp.docmd("AUTH", "PLAIN " + _auth_plain(sub.keys["live"]))
        assert code == 530 and b"5.7.0" in reply and b"STARTTLS" in reply, reply
        code, reply = smtp.docmd("MAIL", "FROM:<app@example.com>")
        assert code == 530, reply


def test_mail_without_auth_gets_530(sub: SubmissionStack) -> None:
    with smtplib.SMTP("127.0.0.1", sub.ports["starttls"], timeout=10) as smtp:
        smtp.starttls(context=_tls(sub))
        smtp.ehlo()
        code, reply = smtp.mail("app@example.com")
        assert (code, reply[:5]) == (530, b"5.7.0"), reply


def test_wrong_key_and_key_without_send_scope_get_535(sub: SubmissionStack) -> None:
    before = _metric(sub, "auth_failed")
    for key, text in (("pw_live_" + "x" * 40, "credentials invalid"), (sub.keys["read_only"], "send scope"),
                      ("not a key at all", "credentials invalid")):
        with smtplib.SMTP("127.0.0.1", sub.ports["starttls"], timeout=10) as smtp:
            smtp.starttls(context=_tls(sub))
            with pytest.raises(smtplib.SMTPAuthenticationError) as refused:
                smtp.login("apikey", key)
            assert refused.value.smtp_code == 535 and refused.value.smtp_error.startswith(b"5.7.8"), refused.value
            assert text in refused.value.smtp_error.decode()
    with smtplib.SMTP("127.0.0.1", sub.ports["starttls"], timeout=10) as smtp:  # AUTH LOGIN as well
        smtp.starttls(context=_tls(sub))
        smtp.ehlo()
        code, _ = smtp.docmd("AUTH", "LOGIN " + base64.b64encode(b"apikey").decode())
        assert code == 334
        code, reply = smtp.docmd(base64.b64encode(b"pw_live_wrongwrongwrongwrong").decode())
        assert code == 535, reply
        smtp.user, smtp.password = "apikey", sub.keys["live"]
        assert smtp.auth("LOGIN", smtp.auth_login)[0] == 235
    assert _metric(sub, "auth_failed") >= before + 4


def test_per_key_rate_limit_answers_451(sub: SubmissionStack) -> None:
    dee = _address("dee")
    with _connect(sub, key=sub.keys["slow"]) as smtp:
        for _ in range(2):
            _accepted_id(*_submit(smtp, [dee], _message(dee)))
        code, reply = _submit(smtp, [dee], _message(dee))
    assert code == 451 and reply.startswith("4.7.0") and "retry in" in reply, reply


def test_oversized_message_gets_552(sub: SubmissionStack) -> None:
    eve = _address("eve")
    big = _message(eve, body=("x" * 76 + "\r\n") * (MAX_BYTES // 78 + 10))
    with _connect(sub) as smtp:
        assert f"SIZE {MAX_BYTES}" in smtp.ehlo()[1].decode()
        with pytest.raises(smtplib.SMTPSenderRefused) as refused:  # smtplib declares SIZE= at MAIL
            smtp.sendmail("app@example.com", [eve], big)
        assert refused.value.smtp_code == 552 and refused.value.smtp_error.startswith(b"5.3.4")
        code, reply = _submit(smtp, [eve], big)  # no SIZE= given: refused at the end of DATA
        assert code == 552 and reply.startswith("5.3.4"), reply
        assert _accepted_id(*_submit(smtp, [eve], _message(eve)))  # the session goes on


def test_header_injection_is_refused(sub: SubmissionStack) -> None:
    fay = _address("fay")
    injected = [
        _message(fay, subject="hi\rBcc: victim@example.org"),  # a bare CR inside a header
        _message(fay, subject="hi\nBcc: victim@example.org"),  # a bare LF inside a header
        _message(fay, subject="hi\0there"),
        _message(fay, headers="X-Long: " + "a" * 991 + "\r\n"),  # 999 octets: over RFC 5322's 998
    ]
    with _connect(sub) as smtp:
        for raw in injected:
            code, reply = _raw_data(smtp, fay, raw)
            assert code == 550 and reply.startswith("5.6.0"), (raw[:120], reply)
        code, reply = _raw_data(smtp, fay, _message(fay, headers="X-Longer: " + "a" * 1100 + "\r\n"))
        assert code == 500 and reply.startswith("5.6.0"), reply  # aiosmtpd's own line limit
        code, reply = _submit(smtp, [fay], _message(fay).replace(b"From: App <app@example.com>", b"From: nobody"))
        assert code == 553 and reply.startswith("5.1.3"), reply
    time.sleep(0.5)
    with sub.recorder.lock:
        assert not [r for r in sub.recorder.received if fay in r.rcpt_tos or "victim@example.org" in r.rcpt_tos]


def test_many_messages_on_one_connection(sub: SubmissionStack) -> None:
    rcpts = [_address(f"many{i}") for i in range(6)]
    with _connect(sub) as smtp:
        ids = [_accepted_id(*_submit(smtp, [rcpt], _message(rcpt, subject=f"n{i}"))) for i, rcpt in enumerate(rcpts)]
        smtp.rset()
        ids.append(_accepted_id(*_submit(smtp, [rcpts[0]], _message(rcpts[0], subject="after RSET"))))
    assert len(set(ids)) == len(ids)
    for message_id in ids:
        _wait_status(sub, message_id, {S.EMAIL_STATUS_SENT})
    for rcpt in rcpts:
        assert _received(sub, rcpt)


def test_bcc_via_the_envelope(sub: SubmissionStack) -> None:
    to, hidden = _address("to"), _address("hidden")
    raw = _message(to, headers=f"Bcc: {hidden}\r\n")
    with _connect(sub) as smtp:
        message_id = _accepted_id(*_submit(smtp, [to, hidden], raw))
    status = _wait_status(sub, message_id, {S.EMAIL_STATUS_SENT})
    assert sorted(r.address for r in status.recipients) == sorted([to, hidden])
    for rcpt in (to, hidden):
        received = _received(sub, rcpt)
        assert b"\nbcc:" not in received.data.lower() and hidden.encode() not in received.data.split(b"\r\n\r\n")[0]
        assert received.message["To"] == to


def test_smtputf8_address(sub: SubmissionStack) -> None:
    jorg = f"jörg-{secrets.token_hex(3)}@example.org"
    raw = (f"From: App <app@example.com>\r\nTo: Jörg <{jorg}>\r\nSubject: Grüße\r\n"
           "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHallo Jörg\r\n").encode()
    with _connect(sub) as smtp:
        message_id = _accepted_id(*_submit(smtp, [jorg], raw, options=("SMTPUTF8", "BODY=8BITMIME")))
    _wait_status(sub, message_id, {S.EMAIL_STATUS_SENT})
    received = _received(sub, jorg)
    assert "Hallo Jörg".encode() in received.data and "Subject: Grüße".encode() in received.data


def test_resubmitting_the_same_message_id_returns_the_same_email(sub: SubmissionStack) -> None:
    gus = _address("gus")
    raw = _message(gus, message_id=f"{secrets.token_hex(8)}@app.example.com")
    with _connect(sub) as smtp:
        first = _accepted_id(*_submit(smtp, [gus], raw))
    with _connect(sub, "implicit") as smtp:  # a client retrying after a lost 250
        again = _accepted_id(*_submit(smtp, [gus], raw))
    assert again == first
    _wait_status(sub, first, {S.EMAIL_STATUS_SENT})
    time.sleep(1.0)
    with sub.recorder.lock:
        assert len([r for r in sub.recorder.received if gus in r.rcpt_tos]) == 1


def test_a_test_key_stores_but_never_reaches_smtp(sub: SubmissionStack) -> None:
    hal = _address("hal")
    with _connect(sub, key=sub.keys["test"]) as smtp:
        message_id = _accepted_id(*_submit(smtp, [hal], _message(hal)))
    _wait_status(sub, message_id, {S.EMAIL_STATUS_SENT}, key=sub.keys["test"])
    time.sleep(1.5)
    with sub.recorder.lock:
        assert not [r for r in sub.recorder.received if hal in r.rcpt_tos]


def test_x_postwire_headers_become_tags_and_metadata(sub: SubmissionStack) -> None:
    ivy = _address("ivy")
    tag = f"t{secrets.token_hex(3)}"
    raw = _message(ivy, headers=f"X-Postwire-Tags: {tag}, receipts\r\nX-Postwire-Metadata: order=42; user=ivy\r\n")
    with _connect(sub) as smtp:
        message_id = _accepted_id(*_submit(smtp, [ivy], raw))
    _wait_status(sub, message_id, {S.EMAIL_STATUS_SENT})
    with sub.client() as client:
        by_tag = list(client.stream_events(tags=[tag], idle_timeout=1.0))
    assert {e.message_id for e in by_tag} == {message_id}
    with psycopg.connect(sub.database) as conn:
        (content,) = conn.execute("SELECT content FROM emails WHERE public_id = %s", (message_id,)).fetchone()
    content = content if isinstance(content, dict) else json.loads(content)
    assert content["metadata"] == {"order": "42", "user": "ivy"} and sorted(content["tags"]) == sorted([tag, "receipts"])
    assert b"x-postwire" not in _received(sub, ivy).data.lower()


def test_swaks_starttls_auth(sub: SubmissionStack, tmp_path: Path) -> None:
    joe = _address("joe")
    path = tmp_path / "message.eml"
    path.write_bytes(_message(joe, subject="from swaks"))
    result = subprocess.run(
        ["swaks", "--server", f"127.0.0.1:{sub.ports['starttls']}", "--tls", "--auth", "PLAIN",
         "--auth-user", "apikey", "--auth-password", sub.keys["live"], "--from", "app@example.com", "--to", joe,
         "--data", f"@{path}", "--timeout", "10"],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    line = next(x for x in result.stdout.splitlines() if "250 2.0.0 OK id=" in x)
    message_id = line.split("id=", 1)[1].strip()
    _wait_status(sub, message_id, {S.EMAIL_STATUS_SENT})
    assert _received(sub, joe).message["Subject"] == "from swaks"


# make dev --------------------------------------------------------------------------------


def test_dev_mode_runs_the_submission_listener(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    grpc_port, smtp_port, inbound_port = free_port(), free_port(), free_port()
    ports = {"starttls": free_port(), "implicit": free_port(), "plain": free_port()}
    env = base_env(grpc_port=str(grpc_port), smtp_port=str(smtp_port), inbound_port=str(inbound_port),
                   submission_port=str(ports["starttls"]), submission_tls_port=str(ports["implicit"]),
                   submission_plain_port=str(ports["plain"]))
    dev = Process(["dev", "--no-envoy", "--data-dir", str(data_dir)], env, tmp_path / "dev.log")
    try:
        wait_serving(f"127.0.0.1:{grpc_port}", dev)
        for port in ports.values():
            wait_listening(port, dev)
        key = (data_dir / "dev-api-key").read_text().strip()
        context = ssl.create_default_context(cafile=str(data_dir / "submission-cert.pem"))
        ids = []
        with smtplib.SMTP("127.0.0.1", ports["starttls"], timeout=10) as smtp:
            smtp.starttls(context=context)
            smtp.login("apikey", key)
            ids.append(_accepted_id(*_submit(smtp, ["b@example.com"], _message("b@example.com"))))
        with smtplib.SMTP("127.0.0.1", ports["plain"], timeout=10) as smtp:  # dev: plain AUTH from loopback
            smtp.login("apikey", key)
            ids.append(_accepted_id(*_submit(smtp, ["c@example.com"], _message("c@example.com"))))
        for message_id in ids:
            eml = data_dir / "outbox" / f"{message_id}.eml"
            deadline = time.monotonic() + 15
            while not eml.exists():
                assert time.monotonic() < deadline, dev.log()
                time.sleep(0.05)
            assert b"X-App: kept as is" in eml.read_bytes()
        assert f"127.0.0.1:{ports['implicit']} (implicit TLS)" in dev.log()
    finally:
        dev.proc.terminate()
        dev.proc.wait(timeout=20)
        dev.stop()
