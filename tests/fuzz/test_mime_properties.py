"""Properties of the MIME we build, in-process: for any valid Send input (unicode and
quotes in display names, unicode subjects, custom header values), core.emails.mime.render on
core.emails.validation.validate_send's output parses back to exactly the headers intended —
no header injected, none lost — and the subject, display names and header values come
back as given."""

from __future__ import annotations

import email
import email.header
import email.policy
import string
from collections import Counter
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from core.emails.mime import render
from core.emails.validation import _RESERVED_HEADERS, _RESERVED_PREFIXES, validate_send

PROPERTIES = settings(max_examples=200, deadline=None, derandomize=True, database=None)
DATE = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)

# Printable text: every code point but controls, line/paragraph separators and surrogates
# (validation refuses controls in headers; a tab is allowed in subjects and values).
PRINTABLE = st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp"))
NAME = st.text(PRINTABLE, max_size=40)
SUBJECT = st.text(st.one_of(PRINTABLE, st.just("\t")), max_size=200)
HEADER_VALUE = st.text(st.one_of(PRINTABLE, st.just("\t")), max_size=200)
FTEXT = "".join(c for c in string.printable if 33 <= ord(c) <= 126 and c != ":")
HEADER_NAME = st.text(st.sampled_from(FTEXT), min_size=1, max_size=30).filter(
    lambda n: n.lower() not in _RESERVED_HEADERS and not n.lower().startswith(_RESERVED_PREFIXES)
)
LOCAL = st.text(st.sampled_from(string.ascii_lowercase + string.digits), min_size=1, max_size=12)
DOMAIN = st.sampled_from(["example.com", "example.org", "mail.example.net", "bücher.example"])


@st.composite
def mailbox(draw: st.DrawFn) -> tuple[str, str, str]:
    """(value as a caller writes it, the addr-spec, the display name expected back)."""
    name, spec = draw(NAME), f"{draw(LOCAL)}@{draw(DOMAIN)}"
    style = draw(st.sampled_from(["bare", "quoted", "unquoted"]))
    if style == "bare" or not name.strip():
        return spec, spec, ""
    if style == "unquoted" and not any(c in ',;:@<>[]"\\' for c in name):
        return f"{name} <{spec}>", spec, " ".join(name.split())
    quoted = name.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{quoted}" <{spec}>', spec, " ".join(name.split())


def unfold(value: str) -> str:
    return value.replace("\r\n", "").replace("\n", "")


def same_text(parsed: str, intended: str) -> bool:
    """Equal once unfolded, but for whitespace at either end (not part of an
    unstructured value: parsers drop it after the colon)."""
    return unfold(parsed).strip(" \t") == intended.strip(" \t")


def same_name(parsed: str, intended: str, encoded: bool) -> bool:
    """Equal; or, where the name went out as RFC 2047 encoded words, equal but for
    whitespace: the stdlib's address parser keeps the folding space between two
    adjacent encoded words of a phrase, which RFC 2047 section 6.2 says to drop
    (the rendered header is right; its reading here is not)."""
    return parsed == intended or encoded and "".join(parsed.split()) == "".join(intended.split())


def rfc2047(raw: bytes, field: str) -> tuple[str, str]:
    """(decoded, raw) value of a header, decoded by RFC 2047's rules (email.header)."""
    value = email.message_from_bytes(raw, policy=email.policy.compat32)[field]
    unfolded = unfold(value)
    return str(email.header.make_header(email.header.decode_header(unfolded))), unfolded


def parse(raw: bytes) -> email.message.EmailMessage:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, email.message.EmailMessage)
    return message


def idna_domain(spec: str) -> str:
    local, _, domain = spec.rpartition("@")
    return f"{local}@{domain.encode('idna').decode()}"


@PROPERTIES
@given(
    sender=mailbox(),
    to=st.lists(mailbox(), min_size=1, max_size=3),
    cc=st.lists(mailbox(), max_size=2),
    bcc=st.lists(mailbox(), max_size=2),
    reply_to=st.one_of(st.none(), mailbox()),
    subject=SUBJECT,
    headers=st.dictionaries(HEADER_NAME, HEADER_VALUE, max_size=4).filter(
        lambda h: len({n.lower() for n in h}) == len(h)
    ),
    html=st.booleans(),
)
def test_rendered_headers_are_exactly_the_intended_ones(
    sender: tuple[str, str, str], to: list[tuple[str, str, str]], cc: list[tuple[str, str, str]],
    bcc: list[tuple[str, str, str]], reply_to: tuple[str, str, str] | None, subject: str,
    headers: dict[str, str], html: bool,
) -> None:
    content = validate_send(
        from_address=sender[0], to=[t[0] for t in to], cc=[c[0] for c in cc], bcc=[b[0] for b in bcc],
        reply_to=reply_to[0] if reply_to else "", subject=subject, text_body="body ü",
        html_body="<p>body</p>" if html else "", headers=headers, tags=[], metadata={},
    )
    raw = render(content, message_id="msg_1@example.com", date=DATE)
    message = parse(raw)

    expected = ["from", "to", "subject", "date", "message-id", "mime-version", "content-type"]
    expected += ["cc"] * bool(cc) + ["reply-to"] * bool(reply_to) + [n.lower() for n in headers]
    expected += [] if html else ["content-transfer-encoding"]
    assert Counter(k.lower() for k in message.keys()) == Counter(expected), raw[:2000]

    assert same_text(str(message["Subject"]), subject), raw[:2000]
    for name, value in headers.items():
        assert same_text(str(message[name]), value), (name, raw[:2000])
    for field, given_boxes in (("From", [sender]), ("To", to), ("Cc", cc), ("Reply-To", [reply_to] if reply_to else [])):
        if not given_boxes:
            continue
        parsed = message[field].addresses
        assert [a.addr_spec for a in parsed] == [idna_domain(spec) for _, spec, _ in given_boxes], (field, raw[:2000])
        decoded = rfc2047(raw, field)
        for address, (_, _, display) in zip(parsed, given_boxes):
            assert same_name(address.display_name, display, "=?" in decoded[1]), (field, raw[:2000])
            if not display.isascii():  # what an RFC 2047 reader shows: spaces and all
                assert display in decoded[0], (field, display, decoded[0])
    header_block = raw.split(b"\r\n\r\n", 1)[0]
    for _, spec, _ in bcc:
        if spec not in {t[1] for t in to + cc} | {sender[1]} | ({reply_to[1]} if reply_to else set()):
            assert idna_domain(spec).encode() not in header_block
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))


INJECTIONS = st.sampled_from(["\r\n", "\n", "\r", "\x00", "\u2028", "\u2029", "\x85", "\x0b", "\x0c"])


@PROPERTIES
@given(
    prefix=st.text(PRINTABLE, max_size=10),
    injection=INJECTIONS,
    suffix=st.sampled_from(["Bcc: victim@example.com", "X-Injected: 1", "", "\r\n<html>"]),
    where=st.sampled_from(["subject", "header", "from", "to", "reply_to", "display_name"]),
)
def test_line_breaks_and_nul_never_get_past_validation(prefix: str, injection: str, suffix: str, where: str) -> None:
    """CR, LF, NUL and the other line breaks are refused wherever they go in a header."""
    evil = prefix + injection + suffix
    fields = {
        "from_address": "a@example.com", "to": ["b@example.com"], "cc": [], "bcc": [], "reply_to": "",
        "subject": "s", "text_body": "t", "html_body": "", "headers": {}, "tags": [], "metadata": {},
    }
    if where == "subject":
        fields["subject"] = evil
    elif where == "header":
        fields["headers"] = {"X-Note": evil}
    elif where == "from":
        fields["from_address"] = f"{evil}@example.com"
    elif where == "to":
        fields["to"] = [f"b@example.com{evil}"]
    elif where == "reply_to":
        fields["reply_to"] = f"r@example.com {evil}"
    else:
        fields["to"] = [f'"{evil}" <b@example.com>']
    try:
        validate_send(**fields)  # type: ignore[arg-type]
    except ValueError:
        return
    raise AssertionError(f"accepted {evil!r} in {where}")
