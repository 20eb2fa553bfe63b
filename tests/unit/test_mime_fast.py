"""The direct renderer (core.emails.mime_fast) writes the very bytes the stdlib's
EmailMessage path of core.emails.mime.render writes, for every shape it takes on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.emails import mime
from core.emails.content import Attachment
from core.emails.validation import validate_send
from tests.fuzz.test_mime_properties import HEADER_NAME, HEADER_VALUE, SUBJECT, mailbox

DATE = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
BODY = st.one_of(
    st.just(""),
    st.text(max_size=300),
    st.text(st.sampled_from("ab \n\r\t.=-"), max_size=400),
    st.builds(lambda word, n: word * n, st.sampled_from(["Lorem ipsum. ", "x", "ü ", "=\n", "\r\n.\r\n"]),
              st.integers(0, 300)),
)


def slow(content, message_id: str = "msg_1@example.com", date: datetime = DATE) -> bytes:  # noqa: ANN001
    """render() with the direct path switched off: the stdlib's EmailMessage."""
    original = mime.render_fast
    mime.render_fast = lambda *a, **k: None  # type: ignore[assignment]
    try:
        return mime.render(content, message_id=message_id, date=date)
    finally:
        mime.render_fast = original  # type: ignore[assignment]


def fast(content, message_id: str = "msg_1@example.com", date: datetime = DATE) -> bytes | None:  # noqa: ANN001
    return mime.render_fast(content, message_id=message_id, date=date, policy=mime._ASCII_POLICY,
                            mailbox=mime._mailbox, unstructured=mime._raw_value,
                            boundary=lambda: mime._boundary(message_id, content, "alternative"))


@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(
    sender=mailbox(),
    to=st.lists(mailbox(), max_size=3),
    cc=st.lists(mailbox(), max_size=2),
    reply_to=st.one_of(st.none(), mailbox()),
    subject=SUBJECT,
    headers=st.dictionaries(HEADER_NAME, HEADER_VALUE, max_size=3).filter(lambda h: len({n.lower() for n in h}) == len(h)),
    text=BODY,
    html=BODY,
)
def test_direct_rendering_writes_the_same_bytes_as_the_stdlib_path(
    sender, to, cc, reply_to, subject, headers, text, html  # noqa: ANN001
) -> None:
    if not to and not cc:
        to = [("r@example.com", "r@example.com", "")]
    if not text and not html:
        text = "x"
    content = validate_send(
        from_address=sender[0], to=[t[0] for t in to], cc=[c[0] for c in cc], bcc=[],
        reply_to=reply_to[0] if reply_to else "", subject=subject, text_body=text,
        html_body=html, headers=headers, tags=[], metadata={},
    )
    direct = fast(content)
    if mime.requires_smtputf8(content):
        return
    assert direct is None or direct == slow(content)
    assert mime.render(content, message_id="msg_1@example.com", date=DATE) == slow(content)


@pytest.mark.parametrize("shape", ["text", "html", "both", "no to", "empty subject", "long word", "tz", "long id"])
def test_direct_rendering_of_each_shape_matches(shape: str) -> None:
    kwargs = dict(from_address="Bob B. <bob@example.com>", to=["Ann <ann@example.com>"], cc=[], bcc=[], reply_to="",
                  subject="Hello there", text_body="Hi\nthere " * 40, html_body="", headers={"X-Tag": "a b"},
                  tags=[], metadata={})
    message_id, date = "msg_1@example.com", DATE
    if shape == "html":
        kwargs.update(text_body="", html_body="<p>" + "é" * 300 + "</p>")
    if shape == "both":
        kwargs.update(html_body="<p>hi</p>")
    if shape == "no to":
        kwargs.update(to=[], bcc=["b@example.com"])
    if shape == "empty subject":
        kwargs.update(subject="")
    if shape == "long word":
        kwargs.update(subject="x" * 995)
    if shape == "tz":
        date = datetime(2026, 1, 2, 3, 4, 5, 999, tzinfo=timezone(timedelta(hours=-5, minutes=-30)))
    if shape == "long id":
        message_id = "msg_" + "a" * 80 + "@example.com"
    content = validate_send(**kwargs)
    assert mime.render(content, message_id=message_id, date=date) == slow(content, message_id, date)
    if shape in ("text", "html", "both", "no to", "empty subject", "tz"):
        assert fast(content, message_id, date) is not None  # the direct path took it


def test_attachments_take_the_stdlib_path() -> None:
    content = validate_send(from_address="bob@example.com", to=["ann@example.com"], cc=[], bcc=[], reply_to="",
                            subject="s", text_body="t", html_body="", headers={}, tags=[], metadata={})
    import dataclasses

    with_file = dataclasses.replace(content, attachments=(Attachment("a.txt", "text/plain", b"hi", ""),))
    assert fast(with_file) is None
    assert mime.render(with_file, message_id="msg_1@example.com", date=DATE) == slow(with_file)
