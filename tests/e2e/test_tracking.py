"""Open and click tracking on a stack of its own, through the real Envoy.

The stack relays to an in-process SMTP recorder, has POSTWIRE_PUBLIC_URL set (the
tracking links' base), trusts x-forwarded-for from 127.0.0.1 (Envoy) and serves the
tracking handler on its own port, which the test Envoy's `postwire_tracking` cluster
points at. A DNS server holds the verified domain's DKIM keys, so the delivered,
rewritten message is checked by an independent verifier (dkimpy).
"""

from __future__ import annotations

import json
import re
import secrets
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass

import grpc
import httpx
import pytest

from core.tracking.tokens import CLICK, OPEN, Claim, TrackingTokens
from postwire.v1 import email_service_pb2 as epb
from postwire.v1 import event_pb2, webhook_service_pb2_grpc
from postwire.v1 import webhook_service_pb2 as wpb
from postwire_client import Client
from postwire_client.errors import NotFound
from tests.support import dkim_judge
from tests.support.dns import DnsServer
from tests.support.domains import verified_domain
from tests.support.envoy import EnvoyInfo, run_envoy
from tests.support.keys import make_key
from tests.support.ports import free_port
from tests.support.processes import POSTWIRE, run, running_stack
from tests.support.smtp import Recorder, SmtpServer
from tests.support.stack import fresh_database, fresh_queue_prefix, stack_env
from tests.support.webhooks import Receiver

PUBLIC_URL = "https://pw.example.com"
HTML = ('<html><body><p>Hello</p><A HREF=\'https://shop.example/cart?id=7&amp;ref=mail\'>Cart</A>'
        '<!-- <a href="https://hidden.example/">old</a> --><a href="mailto:help@example.com">help</a>'
        '<a href="https://shop.example/unsubscribe?u=1">unsubscribe</a></body></html>')
TEXT = "Cart: https://shop.example/cart?id=7&ref=mail"
CART = "https://shop.example/cart?id=7&ref=mail"
BROWSER = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) AppleWebKit/605.1.15"
OPENED, CLICKED = event_pb2.EVENT_TYPE_OPENED, event_pb2.EVENT_TYPE_CLICKED


@dataclass
class TrackStack:
    address: str
    env: dict[str, str]
    recorder: Recorder
    dns: DnsServer
    envoy: EnvoyInfo
    tracking_port: int
    receiver: Receiver
    key: str  # account "trk-a", every scope
    key_b: str  # account "trk-b"
    key_c: str  # account "trk-c": opens and clicks tracked by default

    def client(self, key: str | None = None) -> Client:
        return Client(self.address, key or self.key)

    @property
    def tokens(self) -> TrackingTokens:
        return TrackingTokens(self.env["POSTWIRE_SECRET_KEY"])


@pytest.fixture(scope="module")
def ts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TrackStack]:
    logs = tmp_path_factory.mktemp("tracking-stack")
    grpc_port, tracking_port = free_port(), free_port()
    with (SmtpServer() as smtp, DnsServer() as dns, Receiver() as receiver,
          fresh_database("postwire_tracking") as database_url, fresh_queue_prefix("tracking") as prefix):
        env = stack_env(
            database_url=database_url, queue_prefix=prefix, grpc_port=grpc_port,
            smtp_relays=json.dumps([{"host": "127.0.0.1", "port": smtp.port, "timeout": 2}]),
            public_url=PUBLIC_URL, trusted_proxies='["127.0.0.1"]', tracking_port=str(tracking_port),
            dns_servers=json.dumps([dns.host]), dns_port=str(dns.port), dns_timeout="1",
            sending_host="mta.example.com", metrics_port="0", worker_metrics_port="0",
        )
        run(["migrate"], env)
        scopes = ["--scope", "send", "--scope", "read", "--scope", "events", "--scope", "admin"]
        keys = [make_key(env, a, *scopes, name="k")
                for a in ("trk-a", "trk-b", "trk-c")]
        said = run(["accounts", "set-tracking-default", "trk-c", "--opens", "on", "--clicks", "on"], env)
        assert "opens on, clicks on" in said
        with (running_stack(env, logs, f"127.0.0.1:{grpc_port}"),
              run_envoy(grpc_port, logs, tracking_port=tracking_port) as envoy):
            yield TrackStack(f"127.0.0.1:{grpc_port}", env, smtp.recorder, dns, envoy, tracking_port, receiver, *keys)


def _send(stack: TrackStack, to: list[str] | None = None, key: str | None = None, sender: str = "news@example.com",
          **fields: object) -> str:
    request = epb.SendRequest(from_address=sender, to=to or [f"r-{secrets.token_hex(3)}@example.org"],
                              subject="news", text_body=TEXT, html_body=HTML, **fields)  # type: ignore[arg-type]
    with stack.client(key) as client:
        return client.send(request).message_id


def _html(stack: TrackStack, message_id: str) -> str:
    body = stack.recorder.wait_for(message_id).message.get_body(("html",))
    assert body is not None
    return str(body.get_content())


def _paths(stack: TrackStack, message_id: str) -> tuple[str, str]:
    """(pixel path, the cart link's path) in the delivered html."""
    html = _html(stack, message_id)
    pixel = re.search(rf'<img src="{re.escape(PUBLIC_URL)}(/t/o/[A-Za-z0-9_-]+)"', html)
    link = re.search(rf"HREF='{re.escape(PUBLIC_URL)}(/t/c/[A-Za-z0-9_-]+)'", html)
    assert pixel or link, html
    return pixel.group(1) if pixel else "", link.group(1) if link else ""


def _events(stack: TrackStack, message_id: str, type_: int, count: int, key: str | None = None) -> list[event_pb2.Event]:
    deadline = time.monotonic() + 15
    with stack.client(key) as client:
        while True:
            found = [e for e in client.get_status(message_id).events if e.type == type_]
            if len(found) >= count or time.monotonic() > deadline:
                return found
            time.sleep(0.1)


def _http(stack: TrackStack) -> httpx.Client:
    return httpx.Client(base_url=stack.envoy.base_url, timeout=10, follow_redirects=False)


def _verified_domain(stack: TrackStack) -> str:
    with stack.client() as client:
        return verified_domain(client, stack.dns)


# The delivered message --------------------------------------------------------------------


def test_delivered_message_is_rewritten_before_dkim_signing(ts: TrackStack) -> None:
    domain = _verified_domain(ts)
    message_id = _send(ts, sender=f"news@{domain}", track_opens=True, track_clicks=True)
    received = ts.recorder.wait_for(message_id)
    assert [v.result for v in dkim_judge.dkimpy(received.data, ts.dns)] == ["pass"]
    html = _html(ts, message_id)
    assert CART.replace("&", "&amp;") not in html and "/t/o/" in html and "/t/c/" in html
    assert '<!-- <a href="https://hidden.example/">old</a> -->' in html  # comments untouched
    assert 'href="mailto:help@example.com"' in html and 'href="https://shop.example/unsubscribe?u=1"' in html
    assert message_id not in html.split("<p>Hello</p>", 1)[1]  # the tokens name nothing readable
    text = received.message.get_body(("plain",))
    assert text is not None and text.get_content().strip() == TEXT  # text links stay (POSTWIRE_TRACKING_TEXT_LINKS off)


def test_per_message_fields_override_the_account_default(ts: TrackStack) -> None:
    assert "/t/" not in _html(ts, _send(ts))  # trk-a: off by default
    by_default = _html(ts, _send(ts, key=ts.key_c))
    assert "/t/o/" in by_default and "/t/c/" in by_default
    assert "/t/" not in _html(ts, _send(ts, key=ts.key_c, track_opens=False, track_clicks=False))
    opens_only = _html(ts, _send(ts, key=ts.key_c, track_clicks=False))
    assert "/t/o/" in opens_only and "/t/c/" not in opens_only
    clicks_only = _html(ts, _send(ts, track_clicks=True))
    assert "/t/c/" in clicks_only and "/t/o/" not in clicks_only


# The endpoints ----------------------------------------------------------------------------


def test_open_answers_the_gif_and_records_first_then_repeat_on_the_stream_and_webhook(ts: TrackStack) -> None:
    with grpc.insecure_channel(ts.address) as channel:
        hooks = webhook_service_pb2_grpc.WebhookServiceStub(channel)
        where = "/hook/" + secrets.token_hex(4)
        hooks.CreateWebhookEndpoint(wpb.CreateWebhookEndpointRequest(url=ts.receiver.route(where), event_types=[OPENED]),
                                    metadata=[("x-api-key", ts.key)])
    address = f"opener-{secrets.token_hex(3)}@example.org"
    message_id = _send(ts, [address], track_opens=True)
    pixel, _ = _paths(ts, message_id)
    with _http(ts) as http:
        for _ in range(2):
            got = http.get(pixel, headers={"user-agent": BROWSER})
            assert got.status_code == 200 and got.headers["content-type"] == "image/gif"
            assert got.content.startswith(b"GIF89a") and "no-store" in got.headers["cache-control"]
    first, repeat = _events(ts, message_id, OPENED, 2)
    assert first.recipient == repeat.recipient == address
    assert first.detail.startswith("first") and repeat.detail.startswith("repeat") and "machine" not in first.detail
    assert BROWSER in first.detail
    with ts.client() as client:
        every = list(client.stream_events(message_ids=[message_id], idle_timeout=6))
        streamed = [e for e in every if e.type == OPENED]
    assert [e.detail for e in streamed] == [first.detail, repeat.detail]
    hooked = ts.receiver.wait_for(where, lambda got: [r for r in got if r.payload["data"].get("message_id") == message_id])
    assert {r.payload["type"] for r in hooked} == {"email.opened"}


def test_click_redirects_to_the_original_url_and_head_is_flagged_machine(ts: TrackStack) -> None:
    message_id = _send(ts, track_clicks=True)
    _, link = _paths(ts, message_id)
    with _http(ts) as http:
        scanned = http.head(link, headers={"user-agent": BROWSER})
        assert scanned.status_code == 302 and scanned.headers["location"] == CART
        clicked = http.get(link + "?url=https://evil.example/", headers={"user-agent": BROWSER})
        assert clicked.status_code == 302 and clicked.headers["location"] == CART
    head, get = _events(ts, message_id, CLICKED, 2)
    assert head.detail.startswith("first; machine: head")
    assert get.detail.startswith("repeat; url: " + CART) and "machine" not in get.detail


def test_machine_opens_google_proxy_and_apple_through_a_trusted_proxy_only(ts: TrackStack) -> None:
    message_id = _send(ts, track_opens=True)
    pixel, _ = _paths(ts, message_id)
    with _http(ts) as http:  # through Envoy a client's own x-forwarded-for is not believed
        http.get(pixel, headers={"user-agent": "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"})
        http.get(pixel, headers={"user-agent": BROWSER, "x-forwarded-for": "17.58.0.1"})
    # Envoy at 127.0.0.1 is a trusted proxy: what it puts last in x-forwarded-for is the client.
    direct = httpx.get(f"http://127.0.0.1:{ts.tracking_port}{pixel}", headers={"user-agent": "Mozilla/5.0",
                                                                               "x-forwarded-for": "17.58.0.1"})
    assert direct.status_code == 200
    google, spoofed, apple = _events(ts, message_id, OPENED, 3)
    assert google.detail.startswith("first; machine: google-image-proxy")
    assert spoofed.detail.startswith("repeat") and "machine" not in spoofed.detail
    assert apple.detail.startswith("repeat; machine: apple-mpp")


def test_tampered_forged_and_foreign_tokens_are_404_and_record_nothing(ts: TrackStack) -> None:
    message_id = _send(ts, track_opens=True, track_clicks=True)
    pixel, link = _paths(ts, message_id)
    token = link.removeprefix("/t/c/")
    flipped = token[:20] + ("A" if token[20] != "A" else "B") + token[21:]
    claim = Claim(CLICK, 1, message_id, 0, "https://evil.example/")
    forged = TrackingTokens("not the server's secret").make(claim)
    open_as_click = "/t/c/" + pixel.removeprefix("/t/o/")
    with _http(ts) as http:
        for path in (f"/t/c/{flipped}", f"/t/c/{forged}", f"/t/c/{token[:-3]}", "/t/c/", "/t/c/x",
                     open_as_click, f"/t/o/{token}", "/t/c/https://evil.example/", f"/t/c/{token}/../../x",
                     "/t/x/" + token):
            got = http.get(path, headers={"user-agent": BROWSER})
            assert got.status_code == 404 and "location" not in got.headers, (path, got.status_code)
        assert http.post(link).status_code in (404, 405)
    time.sleep(1.0)
    with ts.client() as client:
        events = client.get_status(message_id).events
    assert not [e for e in events if e.type in (OPENED, CLICKED)]


def test_a_token_for_another_email_of_the_account_cannot_redirect_elsewhere(ts: TrackStack) -> None:
    """Only the server can make a token: even a genuine account id and email id with a URL
    of the requester's choosing needs the server's key."""
    message_id = _send(ts, track_clicks=True)
    made_here = ts.tokens.make(Claim(CLICK, 1, message_id, 0, "https://evil.example/"))  # with the real key: valid
    with _http(ts) as http:
        assert http.get(f"/t/c/{made_here}").headers.get("location") == "https://evil.example/"  # sanity: key matters
        other = TrackingTokens(ts.env["POSTWIRE_SECRET_KEY"] + "x").make(Claim(CLICK, 1, message_id, 0, "https://evil.example/"))
        assert http.get(f"/t/c/{other}").status_code == 404


def test_events_land_only_in_the_owning_accounts_log(ts: TrackStack) -> None:
    message_id = _send(ts, track_opens=True)
    pixel, _ = _paths(ts, message_id)
    with _http(ts) as http:
        assert http.get(pixel, headers={"user-agent": BROWSER}).status_code == 200
    assert len(_events(ts, message_id, OPENED, 1)) == 1
    with ts.client(ts.key_b) as client:
        with pytest.raises(NotFound):
            client.get_status(message_id)
        assert [e for e in client.stream_events(types=[OPENED], idle_timeout=4)] == []


def test_several_recipients_share_tokens_without_a_recipient(ts: TrackStack) -> None:
    message_id = _send(ts, ["one@example.org", "two@example.org"], track_opens=True)
    pixel, _ = _paths(ts, message_id)
    with _http(ts) as http:
        http.get(pixel, headers={"user-agent": BROWSER})
        http.get(pixel, headers={"user-agent": BROWSER})
    first, repeat = _events(ts, message_id, OPENED, 2)
    assert (first.recipient, repeat.recipient) == ("", "")
    assert first.detail.startswith("first") and repeat.detail.startswith("repeat")
    claim = ts.tokens.read(pixel.removeprefix("/t/o/"), OPEN)
    assert claim is not None and claim.recipient == -1


def test_the_tracking_default_command_fails_with_one_sentence(ts: TrackStack) -> None:
    for args, code, said in ((["no-such-account", "--opens", "on"], 1, "error: no account named 'no-such-account'"),
                             (["trk-a"], 2, "error: give --opens on|off, --clicks on|off or both")):
        result = subprocess.run([POSTWIRE, "accounts", "set-tracking-default", *args], env=ts.env,
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == code and result.stderr.strip() == said and "Traceback" not in result.stderr
