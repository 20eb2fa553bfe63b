"""docs/http-examples.md is tested: every `curl` there runs, in order, through a real
Envoy in front of the stack's server, and its response must have the documented HTTP
status and shape — the same field names at every level, the same JSON types, the same
enum values, and the same error messages (ids aside). Server streams (NDJSON) are read
for as many lines as the example shows.

Two things differ from running the page by hand: the variables ($KEY, $ADMIN_KEY, ...)
are keys of a fresh account and the values `<!-- capture: NAME=path -->` took from earlier
responses, and fixed dates in request bodies move to tomorrow (send_at must lie ahead).
The webhook URL's host is the test's receiver. A GET whose answer does not match yet
(delivery still under way) is retried for a while.
"""

from __future__ import annotations

import json
import re
import secrets
import shlex
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from google.api import annotations_pb2
from google.protobuf import descriptor_pb2

from tests.conftest import Stack
from tests.support.envoy import run_envoy
from tests.support.keys import make_key
from tests.support.processes import REPO
from tests.support.webhooks import Receiver

DOC = REPO / "docs" / "http-examples.md"
DOC_WEBHOOK_BASE = "https://hooks.example.com"
ENUM = re.compile(r"^[A-Z][A-Z0-9]*(_[A-Z0-9]+)+$")
IDS = re.compile(r"\b(msg|whk|key|evt|tpl)_[A-Za-z0-9_]+")
TIMESTAMP = re.compile(r'"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z)"')
FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
STATUS_LINE = re.compile(r"^Response `(\d{3})[^`]*`", re.MULTILINE)
CAPTURE = re.compile(r"<!-- capture: (.*?) -->")


STREAMS = ("/v1/events", "/v1/emails:stream")  # routes answered with newline-delimited JSON


@dataclass
class Example:
    curl: str
    status: int
    body: str  # the documented response
    captures: dict[str, str] = field(default_factory=dict)  # variable -> dotted path
    line: int = 0

    @property
    def streaming(self) -> bool:
        return any(route in self.curl for route in STREAMS) and self.status == 200


def examples(text: str) -> list[Example]:
    """Each ```sh block holding a curl, with the first json block after it, the
    `Response `NNN`` line before that and the capture comments in between."""
    found: list[Example] = []
    blocks = list(FENCE.finditer(text))
    for i, block in enumerate(blocks):
        if block.group(1) != "sh" or "curl " not in block.group(2):
            continue
        response = next((b for b in blocks[i + 1 :] if b.group(1) == "json"), None)
        assert response is not None, f"no response block after the curl at {block.start()}"
        between = text[block.end() : response.start()]
        status = STATUS_LINE.search(between)
        assert status, f"no 'Response `NNN`' line before the response of {block.group(2)[:60]!r}"
        captures = dict(pair.split("=", 1) for c in CAPTURE.findall(between) for pair in c.split())
        line = text.count("\n", 0, block.start()) + 1
        found.append(Example(block.group(2), int(status.group(1)), response.group(2), captures, line))
    return found


# Running a curl command line ------------------------------------------------------------


@dataclass
class Request:
    method: str
    url: str
    headers: dict[str, str]
    body: str | None


def parse_curl(command: str, variables: dict[str, str]) -> Request:
    """The request a curl command line makes (the flags this page uses)."""
    words = shlex.split(command.replace("\\\n", " "))
    assert words[0] == "curl", command
    method, url, headers, body = "", "", {}, None
    it = iter(words[1:])
    for word in it:
        if word in ("-s", "-N", "-sN", "-i"):
            continue
        if word == "-X":
            method = next(it)
        elif word == "-H":
            name, _, value = next(it).partition(":")
            headers[name.strip().lower()] = expand(value.strip(), variables)
        elif word == "-d":
            body = next(it)
            assert "$" not in body, "single-quoted bodies are not expanded by a shell either"
        elif word.startswith("-"):
            raise AssertionError(f"curl flag {word} is not understood by this test")
        else:
            assert not url, f"two URLs in {command!r}"
            url = expand(word, variables)
    return Request(method or ("POST" if body is not None else "GET"), url, headers, body)


def expand(text: str, variables: dict[str, str]) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        assert name in variables, f"${name} is neither set up nor captured before it is used"
        return variables[name]

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", value, text)


def tomorrow_dates(body: str) -> str:
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return TIMESTAMP.sub(f'"{tomorrow}"', body)


# Comparing shapes ----------------------------------------------------------------------


def shape_errors(doc: Any, got: Any, path: str = "$", strict: bool = True) -> list[str]:
    """How `got` differs from the documented `doc` in structure, types and enums."""
    if isinstance(doc, dict):
        if not isinstance(got, dict):
            return [f"{path}: documented an object, got {got!r}"]
        errors = []
        if set(doc) != set(got):
            errors.append(f"{path}: documented fields {sorted(doc)}, got {sorted(got)}")
        for key in set(doc) & set(got):
            if key == "message" and path == "$" and "code" in doc:  # an error's message
                if IDS.sub("<id>", doc[key]) != IDS.sub("<id>", got[key]):
                    errors.append(f"$.message: documented {doc[key]!r}, got {got[key]!r}")
                continue
            errors += shape_errors(doc[key], got[key], f"{path}.{key}", strict)
        return errors
    if isinstance(doc, list):
        if not isinstance(got, list):
            return [f"{path}: documented a list, got {got!r}"]
        if not doc or not got:
            return [] if bool(doc) == bool(got) else [f"{path}: documented {len(doc)} items, got {len(got)}"]
        if len(doc) == len(got):
            return [e for i, (d, g) in enumerate(zip(doc, got)) for e in shape_errors(d, g, f"{path}[{i}]", strict)]
        return [e for i, g in enumerate(got) for e in shape_errors(doc[0], g, f"{path}[{i}]", strict=False)]
    if type(doc) is not type(got):
        return [f"{path}: documented {type(doc).__name__} {doc!r}, got {type(got).__name__} {got!r}"]
    if strict and isinstance(doc, str) and ENUM.match(doc) and doc != got:
        return [f"{path}: documented {doc}, got {got}"]
    return []


def dig(value: Any, path: str) -> str:
    for part in path.split("."):
        value = value[part]
    return str(value)


# The test ------------------------------------------------------------------------------


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as receiver:
        yield receiver


def test_the_page_covers_every_http_route() -> None:
    """Every google.api.http rule of the eight services has an example."""
    descriptors = descriptor_pb2.FileDescriptorSet.FromString((REPO / "gen" / "postwire.binpb").read_bytes())
    routes = set()
    for file in descriptors.file:
        for service in file.service:
            if service.name not in {"EmailService", "KeyService", "WebhookService", "DomainService", "AddressService",
                                    "SuppressionService", "TemplateService", "StatsService"}:
                continue
            for method in service.method:
                rule = method.options.Extensions[annotations_pb2.http]
                verb = rule.WhichOneof("pattern")
                routes.add((method.name, verb.upper(), getattr(rule, verb)))
    assert len(routes) == 41
    text = DOC.read_text()
    requests = [parse_curl(e.curl, {**{n: "X" for n in re.findall(r"\$(\w+)", e.curl)}, "PW": "http://pw"})
                for e in examples(text)]
    for name, verb, template in routes:
        pattern = re.sub(r"\\\{\w+\\\}", r"[^/:?]+", re.escape(template)) + r"(\?.*)?$"
        assert any(r.method == verb and re.match("http://pw" + pattern, r.url) for r in requests), (name, verb, template)
        assert f"### {name} — `{verb} {template}`" in text


def test_every_example_answers_as_documented(stack: Stack, receiver: Receiver, tmp_path: Path) -> None:
    account = f"docs-{secrets.token_hex(3)}"
    variables = {
        "KEY": make_key(stack.env, account, name="app"),
        "ADMIN_KEY": make_key(stack.env, account, "--scope", "admin", name="ops"),
    }
    receiver.route("/postwire")
    port = int(stack.address.rsplit(":", 1)[1])
    ran = 0
    with run_envoy(port, tmp_path) as envoy, httpx.Client(timeout=10) as http:
        variables["PW"] = envoy.base_url
        for example in examples(DOC.read_text()):
            request = parse_curl(example.curl, variables)
            body = request.body
            if body is not None:
                body = tomorrow_dates(body).replace(DOC_WEBHOOK_BASE, receiver.url(""))
            where = f"docs/http-examples.md line {example.line}: {request.method} {request.url}"
            deadline = time.monotonic() + (20 if request.method == "GET" else 0)
            while True:
                status, got = call(http, request, body, example)
                documented = parse_documented(example)
                errors = [] if status == example.status else [f"status {status}, documented {example.status}"]
                if example.streaming:
                    if all("sequence" in line for line in documented):  # SendStream acks may come out of order
                        documented, got = (sorted(lines, key=lambda line: int(line.get("sequence", 0)))
                                           for lines in (documented, got))
                    errors += [e for d, g in zip(documented, got) for e in shape_errors(d, g)]
                    if len(got) < len(documented):
                        errors.append(f"only {len(got)} lines of {len(documented)}")
                else:
                    errors += shape_errors(documented, got)
                if not errors or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            assert not errors, f"{where}\n  " + "\n  ".join(errors) + f"\n  response: {json.dumps(got)[:2000]}"
            first = got[0] if example.streaming else got
            for name, path in example.captures.items():
                variables[name] = dig(first, path)
            ran += 1
    assert ran >= 20


def parse_documented(example: Example) -> Any:
    if example.streaming:
        return [json.loads(line) for line in example.body.splitlines() if line.strip()]
    return json.loads(example.body)


def call(http: httpx.Client, request: Request, body: str | None, example: Example) -> tuple[int, Any]:
    if not example.streaming:
        response = http.request(request.method, request.url, headers=request.headers, content=body)
        return response.status_code, response.json()
    wanted = len([line for line in example.body.splitlines() if line.strip()])
    lines: list[Any] = []
    with http.stream(request.method, request.url, headers=request.headers, content=body, timeout=5) as response:
        try:
            for line in response.iter_lines():
                if line.strip():
                    lines.append(json.loads(line))
                if len(lines) == wanted:
                    break
        except httpx.ReadTimeout:  # fewer events than documented (yet)
            pass
        return response.status_code, lines
