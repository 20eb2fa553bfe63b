"""Property-based hostile input over every RPC of every service, on the real stack.

Whatever a caller puts in a request (arbitrary unicode, CR/LF/NUL, huge strings and
maps, invalid addresses, enum numbers the contract does not define, timestamps out of
range), the answer is OK or a status the contract names — never INTERNAL or UNKNOWN,
never the transport's own "metadata too large" — and the server stays up and SERVING.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from postwire.v1 import (
    address_service_pb2_grpc,
    domain_service_pb2_grpc,
    email_pb2,
    email_service_pb2_grpc,
    key_service_pb2_grpc,
    stats_service_pb2_grpc,
    suppression_service_pb2_grpc,
    template_pb2,
    template_service_pb2_grpc,
    unsubscribe_service_pb2_grpc,
    webhook_service_pb2_grpc,
)
from postwire.v1 import address_service_pb2 as apb
from postwire.v1 import domain_service_pb2 as dpb
from postwire.v1 import email_service_pb2 as epb
from postwire.v1 import key_service_pb2 as kpb
from postwire.v1 import stats_service_pb2 as stpb
from postwire.v1 import suppression_service_pb2 as spb
from postwire.v1 import template_service_pb2 as tpb
from postwire.v1 import unsubscribe_service_pb2 as upb
from postwire.v1 import webhook_service_pb2 as wpb
from tests.conftest import Stack
from tests.fuzz.conftest import assert_healthy, fuzz_key

CONTRACT = {
    grpc.StatusCode.OK,
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.ALREADY_EXISTS,
    grpc.StatusCode.OUT_OF_RANGE,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.UNAUTHENTICATED,
}
FUZZ = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)

# Strings -----------------------------------------------------------------------------

NASTY = [
    "", " ", "\x00", "\r\n", "\n", "\r", "a\r\nBcc: victim@example.com", "x\x00y", "\t", "\u2028", "\u2029",
    "\x85", "\x7f", "\ufeff", "\u202e", "%00", "'; DROP TABLE emails; --", "=?utf-8?q?=0D=0A?=", "../../etc/passwd",
    "é" * 300, "\U0001f4e7" * 100, "a" * 5000, "msg_" + "A" * 36, "key_" + "B" * 20, "whk_" + "C" * 20,
    "ZTI6OTk5OTk5OTk5OTk5OTk5OTk5OTk5LjE", "ZTE6LTE", "ZTI6MS4y", "e2:1.2", "9" * 40, "²", "٣",
]
# Any valid proto3 string: every code point but surrogates (which UTF-8 cannot carry).
UNICODE = st.text(st.characters(blacklist_categories=("Cs",)), max_size=80)
CONTROL = st.text(st.characters(max_codepoint=0x9F, blacklist_categories=("Cs",)), max_size=20)
TEXT = st.one_of(UNICODE, CONTROL, st.sampled_from(NASTY), st.builds(lambda a, b: a + b, st.sampled_from(NASTY), UNICODE))
BIG = st.sampled_from([10_000, 100_000, 1_000_000]).map(lambda n: "x" * n)
ANY_TEXT = st.one_of(TEXT, BIG)

VALID_ADDRESSES = ["a@example.com", "Bob <bob@example.com>", '"Doe, J" <j@example.com>', "用户@例子.广告", "x@xn--bcher-kva.example"]
ADDRESS = st.one_of(
    st.sampled_from(VALID_ADDRESSES),
    TEXT,
    st.builds(lambda name, host: f"{name}@{host}", TEXT, TEXT),
    st.builds(lambda name: f'"{name}" <c@example.com>', TEXT),
    st.builds(lambda name: f"{name} <c@example.com>", TEXT),
)
INT32 = st.one_of(st.integers(-(2**31), 2**31 - 1), st.sampled_from([0, -1, 1, 2, 3, 4, 5, 99, 2**31 - 1, -(2**31)]))
ENUM = st.one_of(st.integers(-3, 14), INT32)  # defined values and raw numbers out of range
TIMESTAMP = st.one_of(
    st.none(),
    st.builds(Timestamp, seconds=st.integers(-(2**63), 2**63 - 1), nanos=INT32),
    st.builds(Timestamp, seconds=st.integers(-(10**11), 10**11), nanos=st.integers(0, 999_999_999)),
)
ATTACHMENT = st.builds(
    email_pb2.Attachment,
    filename=TEXT,
    content_type=st.one_of(st.sampled_from(["application/pdf", "image/png", "multipart/mixed", "text/plain; x=1"]), TEXT),
    content=st.binary(max_size=200),
    content_id=st.one_of(st.just(""), TEXT),
)


def small(strategy: st.SearchStrategy[Any], max_size: int = 4) -> st.SearchStrategy[list[Any]]:
    return st.lists(strategy, max_size=max_size)


# Calls ---------------------------------------------------------------------------------


def outcome(call: Callable[[], Any]) -> tuple[grpc.StatusCode, str]:
    try:
        call()
    except grpc.RpcError as error:
        return error.code(), error.details() or ""
    return grpc.StatusCode.OK, ""


def check(call: Callable[[], Any], *, extra: frozenset[grpc.StatusCode] = frozenset()) -> grpc.StatusCode:
    code, details = outcome(call)
    assert code in CONTRACT | extra, f"{code}: {details}"
    # The transport's own refusal (trailers too big for the client) is not an answer.
    assert "metadata size" not in details, details
    return code


class Api:
    """Stubs on one channel, calling with one key."""

    def __init__(self, address: str, key: str) -> None:
        self.channel = grpc.insecure_channel(address)
        self.emails = email_service_pb2_grpc.EmailServiceStub(self.channel)
        self.keys = key_service_pb2_grpc.KeyServiceStub(self.channel)
        self.webhooks = webhook_service_pb2_grpc.WebhookServiceStub(self.channel)
        self.domains = domain_service_pb2_grpc.DomainServiceStub(self.channel)
        self.addresses = address_service_pb2_grpc.AddressServiceStub(self.channel)
        self.suppressions = suppression_service_pb2_grpc.SuppressionServiceStub(self.channel)
        self.unsubscribe = unsubscribe_service_pb2_grpc.UnsubscribeServiceStub(self.channel)
        self.templates = template_service_pb2_grpc.TemplateServiceStub(self.channel)
        self.stats = stats_service_pb2_grpc.StatsServiceStub(self.channel)
        self.md = (("x-api-key", key),)


@pytest.fixture(scope="module")
def api(stack: Stack) -> Iterator[Api]:
    """One account of its own for this module, with a key fuzzing cannot exhaust."""
    client = Api(stack.address, fuzz_key(stack, f"fuzz-{secrets.token_hex(3)}"))
    yield client
    client.channel.close()


@pytest.fixture(autouse=True)
def still_serving(stack: Stack) -> Iterator[None]:
    """After each batch of examples the server is alive and SERVING."""
    yield
    stack.server.check_alive()
    assert_healthy(stack.address)


# EmailService ------------------------------------------------------------------------------


SEND_REQUEST = st.builds(
    epb.SendRequest,
    from_address=ADDRESS,
    to=small(ADDRESS, 6),
    cc=small(ADDRESS, 2),
    bcc=small(ADDRESS, 2),
    reply_to=st.one_of(st.just(""), ADDRESS),
    subject=ANY_TEXT,
    text_body=st.one_of(st.just("hello"), ANY_TEXT),
    html_body=st.one_of(st.just(""), TEXT),
    headers=st.dictionaries(TEXT, TEXT, max_size=4),
    tags=small(TEXT),
    metadata=st.dictionaries(TEXT, ANY_TEXT, max_size=4),
    attachments=small(ATTACHMENT, 2),
    send_at=TIMESTAMP,
    expires_at=TIMESTAMP,
    idempotency_key=TEXT,
    unsubscribe=st.one_of(st.none(), st.booleans()),
)


@FUZZ
@given(request=SEND_REQUEST)
def test_send_answers_only_contract_statuses(api: Api, request: epb.SendRequest) -> None:
    check(lambda: api.emails.Send(request, metadata=api.md, timeout=10))


@FUZZ
@given(message_id=ANY_TEXT)
def test_get_status_and_cancel_answer_only_contract_statuses(api: Api, message_id: str) -> None:
    check(lambda: api.emails.GetStatus(epb.GetStatusRequest(message_id=message_id), metadata=api.md, timeout=10))
    check(lambda: api.emails.CancelScheduled(epb.CancelScheduledRequest(message_id=message_id), metadata=api.md, timeout=10))


CURSOR = st.one_of(
    TEXT,
    st.builds(
        lambda prefix, a, b: base64.urlsafe_b64encode(f"{prefix}{a}.{b}".encode()).decode().rstrip("="),
        st.sampled_from(["e2:", "e1:", "e3:", ""]),
        st.integers(-(2**70), 2**70),
        st.integers(-(2**70), 2**70),
    ),
)


@settings(FUZZ, max_examples=20)
@given(
    request=st.builds(
        epb.StreamEventsRequest,
        message_ids=small(TEXT),
        types=small(ENUM),
        after=CURSOR,
        from_now=st.booleans(),
        tags=small(TEXT),
    )
)
def test_stream_events_answers_only_contract_statuses(api: Api, request: epb.StreamEventsRequest) -> None:
    # A valid request on an account without events just waits: the deadline ends it.
    check(
        lambda: next(api.emails.StreamEvents(request, metadata=api.md, timeout=0.2)),
        extra=frozenset({grpc.StatusCode.DEADLINE_EXCEEDED}),
    )


# KeyService ----------------------------------------------------------------------------------


@FUZZ
@given(
    request=st.builds(
        kpb.CreateApiKeyRequest,
        name=ANY_TEXT,
        kind=ENUM,
        scopes=small(ENUM),
        expires_at=TIMESTAMP,
        send_per_minute=INT32,
        read_per_minute=INT32,
        max_streams=INT32,
    ),
    key_id=ANY_TEXT,
)
def test_key_service_answers_only_contract_statuses(api: Api, request: kpb.CreateApiKeyRequest, key_id: str) -> None:
    check(lambda: api.keys.CreateApiKey(request, metadata=api.md, timeout=10))
    check(lambda: api.keys.ListApiKeys(kpb.ListApiKeysRequest(), metadata=api.md, timeout=10))
    check(lambda: api.keys.RevokeApiKey(kpb.RevokeApiKeyRequest(key_id=key_id), metadata=api.md, timeout=10))


# WebhookService --------------------------------------------------------------------------

# Hosts that never reach DNS: literals, and names that fail IDNA encoding first.
HOSTS = ["127.0.0.1:9", "[::1]:9", "10.0.0.1", "0.0.0.0", "[fe80::1%25eth0]", "a" * 70 + ".com", "a..b", "\ufffd.com",
         "xn--.com", "127.0.0.1:99999", "127.0.0.1:-1", "[::1", "user:pw@127.0.0.1", "", "%00"]
URL = st.one_of(
    TEXT,
    st.builds(lambda scheme, host, path: f"{scheme}://{host}/{path}",
              st.sampled_from(["http", "https", "ftp", "javascript", "HTTP"]), st.sampled_from(HOSTS), TEXT),
)


@pytest.fixture(scope="module")
def endpoint_id(api: Api) -> str:
    request = wpb.CreateWebhookEndpointRequest(url="http://127.0.0.1:9/hook")
    return api.webhooks.CreateWebhookEndpoint(request, metadata=api.md, timeout=10).endpoint.endpoint_id


@settings(FUZZ, max_examples=30)
@given(
    create=st.builds(wpb.CreateWebhookEndpointRequest, url=URL, description=ANY_TEXT, event_types=small(ENUM)),
    update=st.builds(
        wpb.UpdateWebhookEndpointRequest,
        url=st.one_of(st.just(""), URL),
        description=ANY_TEXT,
        event_types=small(ENUM),
        update_mask=st.builds(lambda paths: {"paths": paths}, small(st.one_of(st.sampled_from(["url", "description", "event_types"]), TEXT))),
    ),
    target=st.one_of(st.none(), ANY_TEXT),
    page_size=INT32,
    page_token=TEXT,
    webhook_id=TEXT,
)
def test_webhook_service_answers_only_contract_statuses(
    api: Api, endpoint_id: str, create: wpb.CreateWebhookEndpointRequest, update: wpb.UpdateWebhookEndpointRequest,
    target: str | None, page_size: int, page_token: str, webhook_id: str,
) -> None:
    """`target` None means the account's real endpoint, so the calls get past the lookup."""
    hooks, md = api.webhooks, api.md
    endpoint = endpoint_id if target is None else target
    check(lambda: hooks.CreateWebhookEndpoint(create, metadata=md, timeout=10))
    check(lambda: hooks.ListWebhookEndpoints(wpb.ListWebhookEndpointsRequest(), metadata=md, timeout=10))
    update.endpoint_id = endpoint
    check(lambda: hooks.UpdateWebhookEndpoint(update, metadata=md, timeout=10))
    attempts = wpb.ListWebhookAttemptsRequest(endpoint_id=endpoint, page_size=page_size, page_token=page_token, webhook_id=webhook_id)
    check(lambda: hooks.ListWebhookAttempts(attempts, metadata=md, timeout=10))
    for method, message in (
        (hooks.TestWebhookEndpoint, wpb.TestWebhookEndpointRequest),
        (hooks.RotateWebhookSecret, wpb.RotateWebhookSecretRequest),
        (hooks.EnableWebhookEndpoint, wpb.EnableWebhookEndpointRequest),
    ):
        if target is not None:  # the real endpoint: no test deliveries or rotations on every example
            check(lambda: method(message(endpoint_id=endpoint), metadata=md, timeout=10))
    if target is not None:
        check(lambda: hooks.DeleteWebhookEndpoint(wpb.DeleteWebhookEndpointRequest(endpoint_id=endpoint), metadata=md, timeout=10))


# DomainService ---------------------------------------------------------------------------

# Names that get past the syntax check (so keys are made and DNS is asked), and names
# that IDNA or the label rules refuse.
DOMAIN_NAMES = ["example.com", "Sub.Example.COM.", "bücher.example", "xn--bcher-kva.example", "a" * 63 + ".example",
                "a" * 64 + ".example", "-a.example", "a-.example", "a..example", "localhost", "127.0.0.1", "1.2",
                ".", "..", "*.example.com", "_dmarc.example.com", "xn--.example", "\u0000.example", "a.b" * 100]
DOMAIN_NAME = st.one_of(
    st.sampled_from(DOMAIN_NAMES),
    TEXT,
    st.builds(lambda label: f"fuzz-{label}.example", TEXT),
    st.builds(lambda n: f"fuzz{n}.example", st.integers(0, 10**6)),
)


@pytest.fixture(scope="module")
def domain_id(api: Api) -> str:
    request = dpb.CreateDomainRequest(name=f"fuzz-{secrets.token_hex(3)}.example")
    return api.domains.CreateDomain(request, metadata=api.md, timeout=10).domain.domain_id


@settings(FUZZ, max_examples=30)
@given(
    create=st.builds(dpb.CreateDomainRequest, name=st.one_of(DOMAIN_NAME, BIG), dkim_algorithms=small(ENUM)),
    target=st.one_of(st.none(), DOMAIN_NAME, ANY_TEXT),
    algorithm=ENUM,
    page_size=INT32,
    page_token=st.one_of(TEXT, st.sampled_from(DOMAIN_NAMES)),
)
def test_domain_service_answers_only_contract_statuses(
    api: Api, domain_id: str, create: dpb.CreateDomainRequest, target: str | None, algorithm: int,
    page_size: int, page_token: str,
) -> None:
    """`target` None means the account's real domain, so the calls get past the lookup
    (and it is never deleted)."""
    domains, md = api.domains, api.md
    ref = domain_id if target is None else target
    check(lambda: domains.CreateDomain(create, metadata=md, timeout=10))
    check(lambda: domains.ListDomains(dpb.ListDomainsRequest(page_size=page_size, page_token=page_token),
                                      metadata=md, timeout=10))
    check(lambda: domains.GetDomain(dpb.GetDomainRequest(domain_id=ref), metadata=md, timeout=10))
    check(lambda: domains.VerifyDomain(dpb.VerifyDomainRequest(domain_id=ref), metadata=md, timeout=10))
    check(lambda: domains.RotateDkimKey(dpb.RotateDkimKeyRequest(domain_id=ref, algorithm=algorithm),
                                        metadata=md, timeout=10))
    if target is not None:
        check(lambda: domains.DeleteDomain(dpb.DeleteDomainRequest(domain_id=ref), metadata=md, timeout=10))


# AddressService ------------------------------------------------------------------------------

# Addresses whose domains reach the resolver with odd names, beside the usual hostile text.
MAIL_ADDRESS = st.one_of(
    ADDRESS,
    st.builds(lambda local, domain: f"{local}@{domain}", st.sampled_from(["a", "postmaster", "x+tag", '"a b"']),
              DOMAIN_NAME),
)


@settings(FUZZ, max_examples=30)
@given(address=st.one_of(MAIL_ADDRESS, ANY_TEXT), addresses=small(st.one_of(MAIL_ADDRESS, ANY_TEXT), 12))
def test_address_service_answers_only_contract_statuses(api: Api, address: str, addresses: list[str]) -> None:
    check(lambda: api.addresses.ValidateAddress(apb.ValidateAddressRequest(address=address), metadata=api.md, timeout=10))
    check(lambda: api.addresses.ValidateAddresses(apb.ValidateAddressesRequest(addresses=addresses),
                                                  metadata=api.md, timeout=10))


def test_address_batches_over_the_limit_are_refused_and_at_the_limit_answered(api: Api) -> None:
    at_limit = apb.ValidateAddressesRequest(addresses=[f"r{i}@fuzz-{i % 7}.example" for i in range(1000)])
    reply = api.addresses.ValidateAddresses(at_limit, metadata=api.md, timeout=30)
    assert len(reply.checks) == 1000 and [c.address for c in reply.checks] == list(at_limit.addresses)
    for addresses in ([*at_limit.addresses, "one@more.example"], ["\x00" * 1000] * 20_000):
        request = apb.ValidateAddressesRequest(addresses=addresses)
        code = check(lambda: api.addresses.ValidateAddresses(request, metadata=api.md, timeout=30))
        assert code == grpc.StatusCode.INVALID_ARGUMENT


# SuppressionService --------------------------------------------------------------------------


@settings(FUZZ, max_examples=30)
@given(
    address=st.one_of(MAIL_ADDRESS, ANY_TEXT), addresses=small(st.one_of(MAIL_ADDRESS, ANY_TEXT), 12), reason=ANY_TEXT,
    listing=st.builds(spb.ListSuppressionsRequest, page_size=INT32, page_token=st.one_of(TEXT, CURSOR), kind=ENUM,
                      created_after=TIMESTAMP, created_before=TIMESTAMP, address_prefix=ANY_TEXT),
)
def test_suppression_service_answers_only_contract_statuses(
    api: Api, address: str, addresses: list[str], reason: str, listing: spb.ListSuppressionsRequest,
) -> None:
    s, md = api.suppressions, api.md
    check(lambda: s.ListSuppressions(listing, metadata=md, timeout=10))
    check(lambda: s.AddSuppression(spb.AddSuppressionRequest(address=address, reason=reason), metadata=md, timeout=10))
    check(lambda: s.GetSuppression(spb.GetSuppressionRequest(address=address), metadata=md, timeout=10))
    check(lambda: s.RemoveSuppression(spb.RemoveSuppressionRequest(address=address), metadata=md, timeout=10))
    batch = spb.BatchAddSuppressionsRequest(addresses=addresses, reason=reason)
    check(lambda: s.BatchAddSuppressions(batch, metadata=md, timeout=10))
    remove = spb.BatchRemoveSuppressionsRequest(addresses=addresses)
    check(lambda: s.BatchRemoveSuppressions(remove, metadata=md, timeout=10))


# TemplateService ----------------------------------------------------------------------------

JINJA = st.one_of(TEXT, st.lists(st.sampled_from([
    "{{ x }}", "{{ x.y }}", "{% for i in range(n) %}", "{% endfor %}", "{% if x %}", "{% endif %}", "{{ x|upper }}",
    "{{ ''.__class__ }}", "{{ x * 9999999 }}", "{{ 2 ** n }}", "{% macro m(a) %}{{ m(a) }}{% endmacro %}{{ m(1) }}",
    "{{", "}}", "{%", "%}", "{# c #}", "<b>&</b>", "{{ x|center(n) }}", "{{ range(n)|join(x) }}",
]), max_size=8).map("".join))
VARIABLES = st.dictionaries(st.sampled_from(["x", "n", "y", "", "\x00"]), st.one_of(
    st.integers(-(2**40), 2**40), st.text(max_size=20), st.booleans(), st.none(),
    st.dictionaries(st.sampled_from(["y", "z"]), st.integers(0, 10**6), max_size=2),
), max_size=3)


@settings(FUZZ, max_examples=30)
@given(name=ANY_TEXT, parts=st.tuples(JINJA, JINJA, JINJA), variables=VARIABLES, version=INT32, variant=TEXT,
       names=small(TEXT, 3), weights=small(INT32, 3), template_id=st.one_of(TEXT, st.just("tpl_x")))
def test_template_service_answers_only_contract_statuses(
    api: Api, name: str, parts: tuple[str, str, str], variables: dict[str, Any], version: int, variant: str,
    names: list[str], weights: list[int], template_id: str,
) -> None:
    t, md = api.templates, api.md
    subject, html, text = parts
    variants = [template_pb2.TemplateVariant(name=n, weight=w, subject=subject, html=html)
                for n, w in zip(names, weights)]
    created = tpb.CreateTemplateRequest(name=name or "fuzz", subject=subject, html=html, text=text, variants=variants)
    check(lambda: t.CreateTemplate(created, metadata=md, timeout=10))
    try:  # a valid template to render, with the fuzzed subject and text
        plain = tpb.CreateTemplateRequest(name="fuzz", subject=subject, html="x", text=text)
        tid = t.CreateTemplate(plain, metadata=md, timeout=10).template.template_id
    except grpc.RpcError as error:
        assert error.code() in CONTRACT, error.details()
        tid = template_id
    render = tpb.RenderTemplateRequest(template_id=tid, version=version, variant=variant)
    render.variables.update(variables)
    check(lambda: t.RenderTemplate(render, metadata=md, timeout=10))
    check(lambda: t.GetTemplate(tpb.GetTemplateRequest(template_id=template_id, version=version), metadata=md, timeout=10))
    check(lambda: t.UpdateTemplate(tpb.UpdateTemplateRequest(template_id=tid, html=html, variants=variants),
                                   metadata=md, timeout=10))
    check(lambda: t.ActivateTemplateVersion(tpb.ActivateTemplateVersionRequest(template_id=tid, version=version),
                                            metadata=md, timeout=10))
    check(lambda: t.ListTemplateVersions(tpb.ListTemplateVersionsRequest(template_id=tid, page_size=version,
                                                                         page_token=variant), metadata=md, timeout=10))
    check(lambda: t.ListTemplates(tpb.ListTemplatesRequest(page_size=version, page_token=variant), metadata=md,
                                  timeout=10))
    send = epb.SendRequest(from_address="a@example.com", to=["b@example.com"], template_id=tid,
                           template_version=version)
    send.variables.update(variables)
    check(lambda: api.emails.Send(send, metadata=md, timeout=10))
    check(lambda: t.DeleteTemplate(tpb.DeleteTemplateRequest(template_id=tid), metadata=md, timeout=10))
# StatsService --------------------------------------------------------------------------------


@settings(FUZZ, max_examples=40)
@given(request=st.builds(stpb.GetStatsRequest, start_time=TIMESTAMP, end_time=TIMESTAMP, granularity=ENUM,
                         group_by=ENUM, tag=ANY_TEXT, template_id=ANY_TEXT))
def test_stats_service_answers_only_contract_statuses(api: Api, request: stpb.GetStatsRequest) -> None:
    check(lambda: api.stats.GetStats(request, metadata=api.md, timeout=10))


# UnsubscribeService (public: no key) ----------------------------------------------------------


@settings(FUZZ, max_examples=30)
@given(token=st.one_of(ANY_TEXT, st.text("abcdefghijklmnopqrstuvwxyz234567", max_size=80)),
       content_type=st.one_of(st.sampled_from(["application/x-www-form-urlencoded", "multipart/form-data; boundary=x"]), TEXT),
       data=st.one_of(st.binary(max_size=300), st.sampled_from([b"List-Unsubscribe=One-Click", b"--x--", b"%zz"])))
def test_unsubscribe_service_answers_only_contract_statuses(api: Api, token: str, content_type: str, data: bytes) -> None:
    check(lambda: api.unsubscribe.ShowUnsubscribe(upb.ShowUnsubscribeRequest(token=token), timeout=10))
    body = {"content_type": content_type, "data": data}
    check(lambda: api.unsubscribe.Unsubscribe(upb.UnsubscribeRequest(token=token, body=body), timeout=10))


# Huge fields and maps ------------------------------------------------------------------------


def test_huge_fields_and_maps_are_refused_with_invalid_argument(api: Api) -> None:
    """Far over every limit, but under the 40 MiB transport limit: INVALID_ARGUMENT, with
    a status small enough to reach the client (the violations echo header names)."""
    base = {"from_address": "a@example.com", "to": ["b@example.com"], "text_body": "x"}
    cases: dict[str, dict[str, Any]] = {
        "30 MB body": {"text_body": "x" * 30_000_000},
        "1 MB subject": {"subject": "é" * 1_000_000},
        "100k recipients": {"to": [f"r{i}@example.com" for i in range(100_000)]},
        "10k invalid recipients": {"to": [f"bad\r\n{i}" for i in range(10_000)]},
        "100k headers with CR/LF names": {"headers": {f"X-{i}\r\nBcc: e@example.com": "v" for i in range(100_000)}},
        "one 1 MB header name": {"headers": {"X-" + "é" * 1_000_000: "v"}},
        "100k metadata entries": {"metadata": {f"k{i}": "v" * 100 for i in range(100_000)}},
        "20k tags": {"tags": ["\x01"] * 20_000},
        "1000 attachments": {"attachments": [email_pb2.Attachment(filename="\r\n", content_type="x", content=b"a")] * 1000},
    }
    for name, fields in cases.items():
        request = epb.SendRequest(**{**base, **fields})
        code = check(lambda: api.emails.Send(request, metadata=api.md, timeout=30))
        assert code == grpc.StatusCode.INVALID_ARGUMENT, name
    for message_id in ("m" * 1_000_000, "\x00" * 1000, "é" * 100_000):
        assert check(lambda: api.emails.GetStatus(epb.GetStatusRequest(message_id=message_id), metadata=api.md)) in (
            grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND
        )
    mask = wpb.UpdateWebhookEndpointRequest(endpoint_id="whk_x", update_mask={"paths": ["p" * 100_000]})
    assert check(lambda: api.webhooks.UpdateWebhookEndpoint(mask, metadata=api.md)) in (
        grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND
    )


# Known inputs that once answered INTERNAL (kept as explicit regressions) ----------------------------


REGRESSIONS: list[tuple[str, Callable[[Api], Any]]] = [
    ("GetStatus message_id with NUL", lambda a: a.emails.GetStatus(epb.GetStatusRequest(message_id="msg_\x00"), metadata=a.md)),
    ("CancelScheduled message_id NUL", lambda a: a.emails.CancelScheduled(epb.CancelScheduledRequest(message_id="\x00"), metadata=a.md)),
    ("Send idempotency_key NUL", lambda a: a.emails.Send(epb.SendRequest(
        from_address="a@example.com", to=["b@example.com"], text_body="x", idempotency_key="\x00"), metadata=a.md)),
    ("StreamEvents cursor past BIGINT", lambda a: next(a.emails.StreamEvents(
        epb.StreamEventsRequest(after="ZTI6OTk5OTk5OTk5OTk5OTk5OTk5OTk5LjE"), metadata=a.md, timeout=2))),
    ("StreamEvents message_ids NUL", lambda a: next(a.emails.StreamEvents(
        epb.StreamEventsRequest(message_ids=["\x00"]), metadata=a.md, timeout=2))),
    ("StreamEvents tags NUL", lambda a: next(a.emails.StreamEvents(epb.StreamEventsRequest(tags=["\x00"]), metadata=a.md, timeout=2))),
    ("CreateApiKey name NUL", lambda a: a.keys.CreateApiKey(kpb.CreateApiKeyRequest(name="a\x00", scopes=[1]), metadata=a.md)),
    ("RevokeApiKey key_id NUL", lambda a: a.keys.RevokeApiKey(kpb.RevokeApiKeyRequest(key_id="\x00"), metadata=a.md)),
    ("webhook URL label over 63", lambda a: a.webhooks.CreateWebhookEndpoint(
        wpb.CreateWebhookEndpointRequest(url="http://" + "a" * 70 + ".com/"), metadata=a.md)),
    ("webhook URL empty label", lambda a: a.webhooks.CreateWebhookEndpoint(wpb.CreateWebhookEndpointRequest(url="http://a..b/"), metadata=a.md)),
    ("webhook description NUL", lambda a: a.webhooks.CreateWebhookEndpoint(
        wpb.CreateWebhookEndpointRequest(url="http://127.0.0.1:9/", description="\x00"), metadata=a.md)),
    ("webhook endpoint_id NUL", lambda a: a.webhooks.DeleteWebhookEndpoint(wpb.DeleteWebhookEndpointRequest(endpoint_id="\x00"), metadata=a.md)),
    ("CreateDomain name NUL", lambda a: a.domains.CreateDomain(dpb.CreateDomainRequest(name="a\x00.example"), metadata=a.md)),
    ("CreateDomain unknown algorithm", lambda a: a.domains.CreateDomain(
        dpb.CreateDomainRequest(name="fuzz-algo.example", dkim_algorithms=[99]), metadata=a.md)),
    ("GetDomain empty domain_id", lambda a: a.domains.GetDomain(dpb.GetDomainRequest(domain_id=""), metadata=a.md)),
    ("ListDomains negative page_size", lambda a: a.domains.ListDomains(dpb.ListDomainsRequest(page_size=-1), metadata=a.md)),
    ("ListDomains page_token not ASCII", lambda a: a.domains.ListDomains(dpb.ListDomainsRequest(page_token="²"), metadata=a.md)),
    ("ValidateAddress empty", lambda a: a.addresses.ValidateAddress(apb.ValidateAddressRequest(address=""), metadata=a.md)),
    ("AddSuppression address NUL", lambda a: a.suppressions.AddSuppression(spb.AddSuppressionRequest(address="a\x00@x.example"), metadata=a.md)),
    ("ListSuppressions created_after out of range", lambda a: a.suppressions.ListSuppressions(
        spb.ListSuppressionsRequest(created_after=Timestamp(seconds=2**62)), metadata=a.md)),
    ("BatchAddSuppressions 1001 addresses", lambda a: a.suppressions.BatchAddSuppressions(
        spb.BatchAddSuppressionsRequest(addresses=["a@example.com"] * 1001), metadata=a.md)),
    ("GetStats end_time in year 1", lambda a: a.stats.GetStats(
        stpb.GetStatsRequest(end_time=Timestamp(seconds=-62135596800)), metadata=a.md)),
    ("GetStats tag NUL", lambda a: a.stats.GetStats(stpb.GetStatsRequest(tag="\x00"), metadata=a.md)),
]


@pytest.mark.parametrize("case", [c for _, c in REGRESSIONS], ids=[n for n, _ in REGRESSIONS])
def test_known_hostile_inputs_answer_invalid_argument(api: Api, case: Callable[[Api], Any]) -> None:
    assert check(lambda: case(api)) == grpc.StatusCode.INVALID_ARGUMENT


@pytest.mark.parametrize("token", ["²", "9" * 40])
def test_attempts_page_token_that_is_no_token_is_invalid_argument(api: Api, endpoint_id: str, token: str) -> None:
    request = wpb.ListWebhookAttemptsRequest(endpoint_id=endpoint_id, page_token=token)
    assert check(lambda: api.webhooks.ListWebhookAttempts(request, metadata=api.md)) == grpc.StatusCode.INVALID_ARGUMENT
