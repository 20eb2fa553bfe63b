"""ListEmails' page tokens and filters (core.emails.search_pages, core.emails.search):
pure logic, no database."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest

from core.emails import search, search_pages
from core.emails.model import Status
from core.emails.search_pages import Position
from core.emails.search_terms import content_terms, metadata_term, term
from core.errors import InvalidArgument

WHEN = datetime(2026, 12, 7, 18, 0, 0, 123456, tzinfo=UTC)


def test_a_token_round_trips_its_position_to_the_microsecond() -> None:
    token = search_pages.encode("f1", Position(WHEN, 42))
    assert search_pages.decode(token, "f1") == Position(WHEN, 42)
    assert token.isascii() and "=" not in token


def test_a_token_of_other_filters_is_refused_naming_page_token() -> None:
    token = search_pages.encode("f1", Position(WHEN, 42))
    with pytest.raises(InvalidArgument, match="other filters") as caught:
        search_pages.decode(token, "f2")
    assert [v.field for v in caught.value.violations] == ["page_token"]


def _rewrite(token: str, **changes: object) -> str:
    payload = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    payload.update(changes)
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


@pytest.mark.parametrize("edit", [
    {"k": 43}, {"t": 0}, {"f": "f2"}, {"v": 2}, {"k": "42"}, {"t": 1.5}, {"c": ""}, {"k": True},
])
def test_an_edited_token_is_refused(edit: dict[str, object]) -> None:
    token = _rewrite(search_pages.encode("f1", Position(WHEN, 42)), **edit)
    with pytest.raises(InvalidArgument, match="not a page token"):
        search_pages.decode(token, "f1" if "f" not in edit else "f2")


@pytest.mark.parametrize("token", ["", "x", "!!!!", "é", "a" * 2000, base64.urlsafe_b64encode(b"[1,2]").decode()])
def test_garbage_is_refused(token: str) -> None:
    with pytest.raises(InvalidArgument):
        search_pages.decode(token, "f1")


def test_the_fingerprint_binds_account_and_every_filter_but_not_their_order() -> None:
    base = search.filters(tags=["a", "b"], metadata=["k=v", "x=y"], statuses=[Status.SENT, Status.BOUNCED])
    same = search.filters(tags=["b", "a"], metadata=["x=y", "k=v"], statuses=[Status.BOUNCED, Status.SENT])
    assert base.fingerprint(1) == same.fingerprint(1)
    assert base.fingerprint(1) != base.fingerprint(2)
    others = [
        search.filters(tags=["a"]), search.filters(recipient="a@example.com"), search.filters(from_address="a@example.com"),
        search.filters(template_id="t"), search.filters(created_after=WHEN), search.filters(created_before=WHEN),
        search.filters(statuses=[Status.SENT]), search.filters(metadata=["k=v"]),
    ]
    prints = {f.fingerprint(1) for f in others} | {base.fingerprint(1), search.filters().fingerprint(1)}
    assert len(prints) == len(others) + 2


def test_addresses_are_normalized_and_metadata_split_at_the_first_equals() -> None:
    wanted = search.filters(recipient=" Ada@Bücher.Example ", from_address="NEWS@example.org", metadata=["url=a=b"])
    assert wanted.recipient == "ada@xn--bcher-kva.example" and wanted.from_address == "news@example.org"
    assert wanted.metadata == (("url", "a=b"),)
    assert wanted.terms()[0] == term("r", "ada@xn--bcher-kva.example")  # the recipient drives the scan


def test_the_terms_of_a_content_match_the_filters_terms() -> None:
    content = {"from": {"email": "App@Example.com", "name": "App"}, "to": [{"email": "Ada@Example.com"}],
               "cc": [], "bcc": [{"email": "b@example.com"}], "tags": ["t"], "metadata": {"k": "v=w"}}
    wanted = search.filters(recipient="ada@example.com", from_address="app@example.com", tags=["t"],
                            metadata=["k=v=w"])
    assert set(wanted.terms()) <= content_terms(content)
    assert term("r", "b@example.com") in content_terms(content)
    assert metadata_term("k", "v=w") != metadata_term("k=v", "w")  # the separator is not ambiguous
    assert all(len(t) == 25 for t in content_terms(content))


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"recipient": "nope"}, "recipient"), ({"from_address": "A <a@example.com>"}, "from_address"),
    ({"tags": ["x\n"]}, "tag[0]"), ({"tags": ["x" * 2000]}, "tag[0]"), ({"metadata": ["=v"]}, "metadata[0]"),
    ({"template_id": "a\0"}, "template_id"), ({"tags": [str(n) for n in range(21)]}, "tag"),
    ({"created_after": WHEN, "created_before": WHEN - timedelta(seconds=1)}, "created_before"),
])
def test_bad_filters_name_their_field(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        search.filters(**kwargs)  # type: ignore[arg-type]
    assert field in [v.field for v in caught.value.violations]
