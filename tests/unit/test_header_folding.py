"""Long ASCII header values (List-Unsubscribe URLs) are folded at spaces only, never
turned into RFC 2047 encoded words, which receivers do not decode in these headers."""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime

from core.emails.content import Address, EmailContent
from core.emails.mime import render

TOKEN = "a" * 61
URL = f"<https://postwire.example.com/v1/unsubscribe/{TOKEN}>"
MAILTO = f"<mailto:u+{TOKEN}@bounces.example.com?subject=unsubscribe>"


def rendered(headers: dict[str, str]) -> bytes:
    content = EmailContent(Address("a@example.com"), to=(Address("b@example.org"),), subject="hi",
                           text_body="hello", headers=headers)
    return render(content, message_id="msg_x@example.com", date=datetime(2026, 1, 1, tzinfo=UTC))


def raw_header(data: bytes, name: str) -> str:
    head = data.split(b"\r\n\r\n", 1)[0].decode("ascii")
    lines = head.split("\r\n")
    for index, line in enumerate(lines):
        if line.lower().startswith(name.lower() + ":"):
            folded = [line]
            for more in lines[index + 1:]:
                if not more[:1] in (" ", "\t"):
                    break
                folded.append(more)
            return "\r\n".join(folded)
    raise AssertionError(f"no {name} header")


def test_long_url_header_is_folded_at_spaces_not_encoded() -> None:
    value = f"{URL}, {MAILTO}"
    data = rendered({"List-Unsubscribe": value, "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"})
    raw = raw_header(data, "List-Unsubscribe")
    assert "=?" not in raw
    assert all(len(line) <= 998 for line in raw.split("\r\n"))
    # unfolding (removing CRLF before whitespace) gives back the value exactly
    assert raw.replace("\r\n", "") == f"List-Unsubscribe: {value}"
    assert raw_header(data, "List-Unsubscribe-Post") == "List-Unsubscribe-Post: List-Unsubscribe=One-Click"
    parsed = email.message_from_bytes(data, policy=email.policy.default)
    assert str(parsed["List-Unsubscribe"]) == value


def test_long_word_without_spaces_stays_whole() -> None:
    value = "x" * 300  # no space to fold at: one long line (under 998) beats an encoded word
    raw = raw_header(rendered({"X-Long": value}), "X-Long")
    assert raw == f"X-Long: {value}"


def test_folded_lines_stay_short_when_spaces_allow() -> None:
    words = " ".join(f"word{i}" for i in range(60))
    raw = raw_header(rendered({"X-Words": words}), "X-Words")
    assert "=?" not in raw
    assert all(len(line) <= 78 for line in raw.split("\r\n"))
    assert raw.replace("\r\n", "") == f"X-Words: {words}"


def test_non_ascii_values_are_still_encoded_words() -> None:
    raw = raw_header(rendered({"X-Note": "café au lait"}), "X-Note")
    assert "=?utf-8?" in raw
