"""core.emails.content: the stored (JSON) form round-trips exactly."""

from __future__ import annotations

import json

from core.emails.content import (
    Address,
    Attachment,
    EmailContent,
    content_from_dict,
    content_to_dict,
)

FULL = EmailContent(
    from_address=Address("sender@example.com", "Sender"),
    to=(Address("a@example.com", "A"), Address("用户@例子.广告")),
    cc=(Address("c@example.com"),),
    bcc=(Address("b@example.com"),),
    reply_to=Address("help@example.com", "Support, Team"),
    subject="Grüße 👋",
    text_body="Hi\n",
    html_body='<p>Hi <img src="cid:logo@example.com"></p>',
    headers={"X-Campaign": "spring"},
    tags=("welcome",),
    metadata={"user": "42"},
    attachments=(
        Attachment("Grüße – 报告.pdf", "application/pdf", bytes(range(256))),
        Attachment("logo.png", "image/png", b"\x89PNG\r\n\x1a\n\x00", content_id="logo@example.com"),
    ),
)


def test_round_trips_through_json() -> None:
    stored = json.loads(json.dumps(content_to_dict(FULL)))
    assert content_from_dict(stored) == FULL


def test_attachments_stored_as_base64() -> None:
    stored = content_to_dict(FULL)
    assert stored["attachments"] == [
        {"filename": "Grüße – 报告.pdf", "content_type": "application/pdf",
         "content": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+P0BB"
                    "QkNERUZHSElKS0xNTk9QUVJTVFVWV1hZWltcXV5fYGFiY2RlZmdoaWprbG1ub3BxcnN0dXZ3eHl6e3x9fn+AgYKD"
                    "hIWGh4iJiouMjY6PkJGSk5SVlpeYmZqbnJ2en6ChoqOkpaanqKmqq6ytrq+wsbKztLW2t7i5uru8vb6/wMHCw8TF"
                    "xsfIycrLzM3Oz9DR0tPU1dbX2Nna29zd3t/g4eLj5OXm5+jp6uvs7e7v8PHy8/T19vf4+fr7/P3+/w==",
         "content_id": ""},
        {"filename": "logo.png", "content_type": "image/png", "content": "iVBORw0KGgoA",
         "content_id": "logo@example.com"},
    ]


def test_without_attachments_round_trips() -> None:
    plain = EmailContent(from_address=Address("s@example.com"), to=(Address("t@example.com"),), text_body="x")
    stored = json.loads(json.dumps(content_to_dict(plain)))
    assert stored["attachments"] == []
    assert content_from_dict(stored) == plain


def test_rows_stored_before_attachments_load_with_none() -> None:
    stored = content_to_dict(FULL)
    del stored["attachments"]
    loaded = content_from_dict(stored)
    assert loaded.attachments == ()
    assert loaded == EmailContent(**{**FULL.__dict__, "attachments": ()})


def test_attachment_without_content_id_key_is_not_inline() -> None:
    stored = content_to_dict(FULL)
    del stored["attachments"][0]["content_id"]  # type: ignore[index]
    loaded = content_from_dict(stored)
    assert loaded.attachments[0].content_id == ""
    assert not loaded.attachments[0].inline
    assert loaded.attachments[1].inline
