"""Reading bounces and complaints (core/returns/parse.py): every fixture in
tests/fixtures/reports gives the expected outcomes, and no bytes at all make it raise."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.returns.parse import ARF, DSN, HEURISTIC, parse
from core.returns.tokens import BOUNCE, Claim, Tokens
from tests.support.reports import NAMES, report

TOKENS = Tokens("unit-test-secret")
RETURN_PATH = TOKENS.address(Claim(BOUNCE, 7, "msg_abcdefghijkl"), "bounces.example.com")
ADA, BOB, CY = "ada@example.org", "bob@example.org", "cy@example.org"

# fixture -> (source, [(kind, recipient, status, code)], skipped)
EXPECTED: dict[str, tuple[str, list[tuple[str, str, str, int | None]], list[str]]] = {
    "postfix_hard_bounce": (DSN, [("bounce", ADA, "5.1.1", 550)], []),
    "postfix_delayed": (DSN, [("delay", ADA, "4.4.1", None)], []),
    "exim_dsn": (DSN, [("bounce", ADA, "5.1.1", 550)], []),
    "exim_plain": (HEURISTIC, [("bounce", ADA, "5.0.0", None)], []),
    "gmail": (DSN, [("bounce", ADA, "5.1.1", 550)], []),
    "microsoft": (DSN, [("bounce", ADA, "5.1.10", 550)], []),
    "multi_recipient": (DSN, [("bounce", ADA, "5.1.1", 550), ("delay", BOB, "4.2.2", 452)], [f"delivered: {CY}"]),
    "delivered": (DSN, [], [f"delivered: {ADA}"]),
    "yahoo_arf": (ARF, [("complaint", ADA, "", None)], []),
    "generic_arf": (ARF, [("complaint", ADA, "", None)], []),
    "qmail": (HEURISTIC, [("bounce", ADA, "5.0.0", None)], []),
    "ordinary": ("", [], []),
    "random": ("", [], []),
}


def test_every_fixture_has_an_expectation() -> None:
    assert sorted(EXPECTED) == NAMES


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_outcomes(name: str) -> None:
    source, feedback, skipped = EXPECTED[name]
    parsed = parse(report(name, RETURN_PATH, ADA, BOB, CY))
    assert parsed.source == source
    assert [(f.kind, f.recipient, f.status, f.code) for f in parsed.feedback] == feedback
    assert list(parsed.skipped) == skipped
    assert all(f.source == source for f in parsed.feedback)
    if source:  # the embedded original's return path names the email
        assert parsed.return_addresses[0] == RETURN_PATH
        assert TOKENS.read_address(parsed.return_addresses[0]) == Claim(BOUNCE, 7, "msg_abcdefghijkl")
        assert not parsed.problem
    else:
        assert parsed.problem and not parsed.return_addresses


def test_diagnostics_are_kept_unfolded() -> None:
    [bounce] = parse(report("gmail", RETURN_PATH, ADA)).feedback
    assert bounce.diagnostic.startswith("550-5.1.1 The email account that you tried to reach does not exist")
    assert "\n" not in bounce.diagnostic


def test_crlf_line_endings_read_the_same() -> None:
    for name in ("postfix_hard_bounce", "yahoo_arf", "qmail"):
        lf = parse(report(name, RETURN_PATH, ADA))
        crlf = parse(report(name, RETURN_PATH, ADA).replace(b"\n", b"\r\n"))
        assert crlf.feedback == lf.feedback and crlf.return_addresses == lf.return_addresses


def test_a_not_spam_feedback_report_changes_nothing() -> None:
    raw = report("yahoo_arf", RETURN_PATH, ADA).replace(b"Feedback-Type: abuse", b"Feedback-Type: not-spam")
    parsed = parse(raw)
    assert parsed.source == ARF and not parsed.feedback and parsed.skipped == (f"not-spam: {ADA}",)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=4096))
def test_parse_never_raises_on_random_bytes(raw: bytes) -> None:
    parse(raw)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(NAMES), st.data())
def test_parse_never_raises_on_damaged_fixtures(name: str, data: st.DataObject) -> None:
    raw = bytearray(report(name, RETURN_PATH, ADA, BOB, CY))
    for _ in range(data.draw(st.integers(1, 8))):
        action = data.draw(st.sampled_from(["cut", "flip", "insert", "truncate"]))
        at = data.draw(st.integers(0, max(len(raw) - 1, 0)))
        if action == "cut":
            del raw[at:at + data.draw(st.integers(1, 200))]
        elif action == "flip" and raw:
            raw[at] = data.draw(st.integers(0, 255))
        elif action == "insert":
            raw[at:at] = data.draw(st.sampled_from([b"\n\n", b"--", b";", b"\x00", b"Content-Type: multipart/report\n",
                                                      b"boundary=\"x\"", b"\xff\xfe", b"=?utf-8?b?AAAA?="]))
        else:
            del raw[at:]
    parse(bytes(raw))
