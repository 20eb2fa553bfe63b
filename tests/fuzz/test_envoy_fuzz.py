"""Hostile JSON through the real Envoy (envoy/envoy.yaml) to the real stack: wrong
types, unknown fields, malformed JSON, bad enum names, NUL and lone surrogates, deep
nesting, and bodies over the 40 MiB limit get a 4xx with a JSON google.rpc.Status
that says what is wrong — never a 5xx."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import Stack
from tests.fuzz.conftest import assert_healthy, fuzz_key
from tests.support.envoy import EnvoyInfo, run_envoy

HTTP = settings(
    max_examples=60, deadline=None, derandomize=True, database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
SEND = {"from_address": "a@example.com", "to": ["b@example.com"], "subject": "s", "text_body": "t"}


@pytest.fixture(scope="module")
def envoy(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[EnvoyInfo]:
    port = int(stack.address.rsplit(":", 1)[1])
    with run_envoy(port, tmp_path_factory.mktemp("envoy-fuzz")) as info:
        yield info


@pytest.fixture(scope="module")
def http(stack: Stack, envoy: EnvoyInfo) -> Iterator[httpx.Client]:
    headers = {"x-api-key": fuzz_key(stack)}
    with httpx.Client(base_url=envoy.base_url, headers=headers, timeout=30) as client:
        yield client
    stack.server.check_alive()
    assert_healthy(stack.address)


def assert_clear_client_error(response: httpx.Response, what: object = "") -> None:
    """OK, or a 4xx whose body is a JSON google.rpc.Status with a message."""
    assert response.status_code < 500, f"{what!r}: {response.status_code} {response.text[:500]}"
    if response.status_code >= 400:
        body = response.json()
        assert isinstance(body, dict) and body.get("message"), f"{what!r}: {response.text[:500]}"


# Fixed cases ----------------------------------------------------------------------------------

RAW_BODIES: dict[str, bytes] = {
    "empty body": b"",
    "not JSON": b"hello",
    "truncated JSON": b'{"from_address": "a@example.com", "to": [',
    "trailing garbage": json.dumps(SEND).encode() + b"}}}",
    "a JSON array": b"[1, 2, 3]",
    "a JSON string": b'"x"',
    "invalid UTF-8": b'{"subject": "\xff\xfe"}',
    "lone surrogate escape": b'{"from_address": "a@example.com", "to": ["b@example.com"], "text_body": "\\ud800"}',
    "NUL escape": b'{"from_address": "a@example.com", "to": ["b@example.com"], "text_body": "x", "subject": "\\u0000"}',
    "NUL in metadata": b'{"from_address": "a@example.com", "to": ["b@example.com"], "text_body": "x", "metadata": {"k": "\\u0000"}}',
    "deeply nested arrays": b'{"subject": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    "deeply nested objects": b'{"subject": ' + b'{"a":' * 50_000 + b"1" + b"}" * 50_000 + b"}",
    "duplicate keys": b'{"subject": "a", "subject": "b", "from_address": "a@example.com", "to": ["b@example.com"], "text_body": "t"}',
    "huge number": b'{"attachments": [], "send_at": {"seconds": 1e400}}',
}
# Accepted by the transcoder, so not a 400: protobuf's JSON parser takes a scalar for a
# one-element list, and Envoy drops body fields the message does not define, with no
# option to refuse them (envoyproxy/envoy#46623); the server never sees them.
LENIENT = {"to as a string", "unknown field"}
WRONG_TYPES: dict[str, dict[str, Any]] = {
    "to as a string": {**SEND, "to": "b@example.com"},
    "to holding a number": {**SEND, "to": [1]},
    "subject as a number": {**SEND, "subject": 5},
    "subject as an object": {**SEND, "subject": {}},
    "headers as a list": {**SEND, "headers": ["a"]},
    "header value a number": {**SEND, "headers": {"X-A": 1}},
    "attachment content not base64": {**SEND, "attachments": [{"filename": "a", "content_type": "a/b", "content": "%%%"}]},
    "send_at not a time": {**SEND, "send_at": "tomorrow"},
    "send_at year 10000": {**SEND, "send_at": "10000-01-01T00:00:00Z"},
    "send_at as a number": {**SEND, "send_at": 12},
    "unknown field": {**SEND, "no_such_field": 1},
    "null everywhere": {k: None for k in SEND},
    "CR/LF header injection": {**SEND, "subject": "hi\r\nBcc: victim@example.com"},
    "10k invalid recipients": {**SEND, "to": ["x\r\n"] * 10_000},
}


def test_malformed_and_mistyped_json_bodies_get_clear_4xx(http: httpx.Client) -> None:
    for name, body in RAW_BODIES.items():
        response = http.post("/v1/emails", content=body, headers={"content-type": "application/json"})
        assert_clear_client_error(response, name)
        assert response.status_code != 200 or name in ("duplicate keys", "NUL in metadata"), name
    for name, payload in WRONG_TYPES.items():
        response = http.post("/v1/emails", json=payload)
        assert_clear_client_error(response, name)
        assert response.status_code == 400 or name in LENIENT, (name, response.text[:300])


def test_bad_enum_names_and_query_parameters_get_clear_4xx(http: httpx.Client) -> None:
    for body in ({"name": "k", "scopes": ["SCOPE_NOPE"]}, {"name": "k", "kind": 99}, {"name": "k", "scopes": [12345]}):
        assert_clear_client_error(http.post("/v1/keys", json=body), body)
    for body in ({"url": "http://127.0.0.1:9/", "event_types": ["NOPE"]}, {"url": "http://127.0.0.1:9/", "event_types": [-1]}):
        assert_clear_client_error(http.post("/v1/webhooks", json=body), body)
    for query in ("types=EVENT_TYPE_NOPE", "types=99", "after=%00", "after=ZTI6OTk5OTk5OTk5OTk5OTk5OTk5OTk5LjE",
                  "nope=1", "from_now=maybe", "message_ids=%00"):
        with http.stream("GET", f"/v1/events?{query}", timeout=5) as response:
            response.read()
            assert_clear_client_error(response, query)
            assert response.status_code == 400, (query, response.text[:300])


def test_a_body_over_40_mib_is_413_and_the_server_survives(stack: Stack, http: httpx.Client) -> None:
    body = b'{"text_body": "' + b"x" * (40 * 1024 * 1024 + 10) + b'"}'
    response = http.post("/v1/emails", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert response.json()["message"]
    stack.server.check_alive()
    assert http.post("/v1/emails", json={**SEND, "to": []}).status_code == 400


# Properties --------------------------------------------------------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)
FIELDS = ["from_address", "to", "cc", "bcc", "reply_to", "subject", "text_body", "html_body", "headers", "tags",
          "metadata", "attachments", "send_at", "expires_at", "idempotency_key", "name", "kind", "scopes", "url",
          "description", "event_types", "update_mask", "page_size", "page_token", "address", "addresses", "reason"]
BODY = st.one_of(
    JSON,
    st.dictionaries(st.sampled_from(FIELDS), JSON, max_size=6),
    st.builds(lambda extra: {**SEND, **extra}, st.dictionaries(st.sampled_from(FIELDS), JSON, max_size=3)),
)
ID = st.one_of(st.text(max_size=40), st.sampled_from(["msg_x", "key_x", "whk_x", "%", "..", "a/b", "\x00"]))


def routes(resource_id: str) -> list[tuple[str, str]]:
    i = quote(resource_id, safe="")
    return [
        ("POST", "/v1/emails"), ("GET", f"/v1/emails/{i}"), ("POST", f"/v1/emails/{i}:cancel"),
        ("POST", "/v1/keys"), ("GET", "/v1/keys"), ("POST", f"/v1/keys/{i}:revoke"),
        ("POST", "/v1/webhooks"), ("GET", "/v1/webhooks"), ("PATCH", f"/v1/webhooks/{i}"),
        ("DELETE", f"/v1/webhooks/{i}"), ("POST", f"/v1/webhooks/{i}:test"), ("GET", f"/v1/webhooks/{i}/attempts"),
        ("POST", f"/v1/webhooks/{i}:rotateSecret"), ("POST", f"/v1/webhooks/{i}:enable"),
        ("GET", "/v1/suppressions"), ("POST", "/v1/suppressions"), ("GET", f"/v1/suppressions/{i}"),
        ("DELETE", f"/v1/suppressions/{i}"), ("POST", "/v1/suppressions:batchAdd"),
        ("POST", "/v1/suppressions:batchRemove"),
        ("GET", "/v1/templates"), ("POST", "/v1/templates"), ("GET", f"/v1/templates/{i}"),
        ("DELETE", f"/v1/templates/{i}"), ("POST", f"/v1/templates/{i}:update"), ("POST", f"/v1/templates/{i}:render"),
        ("GET", f"/v1/templates/{i}/versions"), ("POST", f"/v1/templates/{i}/versions/1:activate"),
        ("GET", f"/v1/unsubscribe/{i}"), ("POST", f"/v1/unsubscribe/{i}"),
        ("GET", "/v1/stats"),
    ]


@HTTP
@given(data=st.data(), body=BODY, resource_id=ID)
def test_random_json_on_every_route_never_gets_a_5xx(http: httpx.Client, data: st.DataObject, body: Any, resource_id: str) -> None:
    method, path = data.draw(st.sampled_from(routes(resource_id)))
    content = json.dumps(body).encode() if method in ("POST", "PATCH") else None
    response = http.request(method, path, content=content, headers={"content-type": "application/json"})
    assert_clear_client_error(response, (method, path, body))


@settings(HTTP, max_examples=30)
@given(params=st.dictionaries(
    st.sampled_from(["after", "types", "message_ids", "tags", "from_now", "page_size", "page_token", "webhook_id",
                     "kind", "created_after", "created_before", "address_prefix", "start_time", "end_time",
                     "granularity", "group_by", "tag", "template_id"]),
    st.text(max_size=30), max_size=3,
))
def test_random_query_parameters_never_get_a_5xx(http: httpx.Client, params: dict[str, str]) -> None:
    # A valid /v1/events query opens a stream that stays open: the read timeout ends it.
    for path in ("/v1/events", "/v1/webhooks/whk_x/attempts", "/v1/suppressions", "/v1/stats"):
        try:
            with http.stream("GET", path, params=params, timeout=httpx.Timeout(5, read=0.3)) as response:
                assert response.status_code < 500, (path, params, response.status_code)
                if response.status_code >= 400:
                    response.read()
                    assert_clear_client_error(response, (path, params))
        except httpx.ReadTimeout:
            assert path == "/v1/events"
