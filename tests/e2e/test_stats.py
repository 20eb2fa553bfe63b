"""GetStats on the session stack, with real delivery outcomes from the aiosmtpd relays:
delivered, a hard bounce (550), a deferral then delivery, a failure (retries run out)
and a suppressed recipient. After the scheduler's rollup the totals equal the counts
of the account's events in the log, type by type; tags group them; the failure
patterns name the codes and domains; another tenant sees none of it; JSON through the
real Envoy; the CLI prints the table."""

from __future__ import annotations

import secrets
import subprocess
import time
from collections import Counter
from pathlib import Path

import httpx
import psycopg
import pytest

from postwire.v1 import email_pb2, stats_pb2
from postwire_client import Client, PermissionDenied
from tests.conftest import Stack
from tests.e2e.test_full_stack import send_simple, wait_status
from tests.e2e.test_keys_and_limits import create_key
from tests.support.envoy import run_envoy
from tests.support.processes import POSTWIRE, REPO, base_env

# Event type -> the counter it adds to (core/stats/mapping.py), for the event log's side.
COUNTER_OF = {"queued": "sent", "sent": "delivered", "bounced": "bounced_hard", "delayed": "bounced_soft",
              "complained": "complained", "unsubscribed": "unsubscribed", "suppressed": "suppressed",
              "failed": "failed", "deferred": "deferred"}


class Outcomes:
    """A fresh account that sent one email of each outcome."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.name = f"stats-{secrets.token_hex(3)}"
        self.key = create_key(stack, self.name, *[f for s in ("send", "read") for f in ("--scope", s)])
        suffix = secrets.token_hex(3)
        self.ok, self.bounce = f"ok-{suffix}@inbox.example", f"gone-{suffix}@bounce.example"
        self.later, self.never = f"later-{suffix}@slow.example", f"never-{suffix}@down.example"
        stack.recorder.faults[self.bounce] = ["550 5.1.1 No such user"]
        for relay in (stack.recorder, stack.backup):
            relay.faults[self.later] = ["451 4.3.0 Try again later"]
            relay.faults[self.never] = ["451 4.3.0 Busy"] * 100
        with Client(stack.address, self.key) as client:
            ids = {
                "ok": send_simple(client, to=self.ok, tags=["welcome", "eu"]),
                "bounce": send_simple(client, to=self.bounce, tags=["welcome"]),
                "later": send_simple(client, to=self.later),
                "never": send_simple(client, to=self.never),
            }
            wait_status(client, ids["bounce"], {email_pb2.EMAIL_STATUS_BOUNCED})
            ids["suppressed"] = send_simple(client, to=self.bounce, tags=["welcome"])
            wanted = {"ok": email_pb2.EMAIL_STATUS_SENT, "later": email_pb2.EMAIL_STATUS_SENT,
                      "never": email_pb2.EMAIL_STATUS_FAILED, "suppressed": email_pb2.EMAIL_STATUS_SUPPRESSED}
            for name, status in wanted.items():
                wait_status(client, ids[name], {status}, timeout=40)

    def logged(self) -> Counter[str]:
        """The account's events in the log, by the counter they add to."""
        url = self.stack.env["POSTWIRE_DATABASE_URL"].replace("+psycopg", "")
        with psycopg.connect(url) as conn:
            rows = conn.execute(
                "SELECT e.type, count(*) FROM events e JOIN accounts a ON a.id = e.account_id"
                " WHERE a.name = %s GROUP BY e.type", (self.name,)
            ).fetchall()
        return Counter({COUNTER_OF[t]: n for t, n in rows if t in COUNTER_OF})

    def stats(self, **query: object) -> stats_pb2.StatsCounts:
        with Client(self.stack.address, self.key) as client:
            return client.get_stats(**query)


@pytest.fixture(scope="module")
def outcomes(stack: Stack) -> Outcomes:
    return Outcomes(stack)


def _nonzero(counts: stats_pb2.StatsCounts) -> dict[str, int]:
    return {f.name: v for f, v in counts.ListFields() if v}


def _settled(outcomes: Outcomes, timeout: float = 20.0) -> stats_pb2.GetStatsResponse:
    """The stats once they count every event of the log (the rollup runs each round)."""
    deadline = time.monotonic() + timeout
    while True:
        stats = outcomes.stats()
        if _nonzero(stats.totals) == dict(outcomes.logged()) or time.monotonic() > deadline:
            return stats
        time.sleep(0.2)


def test_totals_equal_the_events_in_the_log_after_real_deliveries(outcomes: Outcomes) -> None:
    stats = _settled(outcomes)
    logged = outcomes.logged()
    assert _nonzero(stats.totals) == dict(logged)
    assert (logged["sent"], logged["delivered"], logged["bounced_hard"], logged["suppressed"], logged["failed"]) == (
        5, 2, 1, 1, 1)
    assert logged["deferred"] >= 2  # `later` once, `never` until its retries ran out
    assert stats.granularity == stats_pb2.STATS_GRANULARITY_DAY and len(stats.groups) == 1
    assert sum(b.counts.sent for b in stats.groups[0].buckets) == 5
    assert stats.HasField("counted_through")


def test_groups_by_tag_and_failure_patterns(outcomes: Outcomes) -> None:
    _settled(outcomes)
    by_tag = outcomes.stats(group_by="tag", granularity="hour")
    totals = {g.tag: _nonzero(g.totals) for g in by_tag.groups}
    assert totals["welcome"] == {"sent": 3, "delivered": 1, "bounced_hard": 1, "suppressed": 1}
    assert totals["eu"] == {"sent": 1, "delivered": 1}
    assert totals[""]["sent"] == 2  # later and never carry no tag
    assert by_tag.totals.sent == 5  # the email with two tags counts once
    f = by_tag.failures
    assert [(c.smtp_code, c.count) for c in f.bounce_codes] == [(550, 1)]
    assert [(d.domain, d.count) for d in f.bounce_domains] == [("bounce.example", 1)]
    deferred = outcomes.logged()["deferred"]
    assert [(c.smtp_code, c.count) for c in f.deferral_codes] == [(451, deferred)]
    assert {d.domain for d in f.deferral_domains} == {"slow.example", "down.example"}
    tagged = outcomes.stats(tag="eu")
    assert _nonzero(tagged.totals) == {"sent": 1, "delivered": 1} and not tagged.failures.bounce_codes


def test_groups_page_through_the_sdk(outcomes: Outcomes) -> None:
    _settled(outcomes)
    with Client(outcomes.stack.address, outcomes.key) as client:
        first = client.get_stats(group_by="tag", page_size=2)
        whole = client.get_all_stats(group_by="tag", page_size=1)
        rest = client.get_stats(group_by="tag", page_size=2, page_token=first.next_page_token)
    assert [g.tag for g in first.groups] == ["", "eu"] and first.next_page_token
    assert [g.tag for g in rest.groups] == ["welcome"] and not rest.next_page_token
    assert [g.tag for g in whole.groups] == ["", "eu", "welcome"] and whole.totals == first.totals == rest.totals


def test_another_tenant_sees_nothing_and_a_key_without_read_is_refused(outcomes: Outcomes, stack: Stack) -> None:
    _settled(outcomes)
    other = create_key(stack, f"stats-other-{secrets.token_hex(3)}", "--scope", "read")
    with Client(stack.address, other) as client:
        stats = client.get_stats(group_by="tag")
    assert not _nonzero(stats.totals) and not stats.groups and not stats.failures.bounce_domains
    sender = create_key(stack, outcomes.name, "--scope", "send")
    with Client(stack.address, sender) as client, pytest.raises(PermissionDenied):
        client.get_stats()


def test_json_through_envoy(outcomes: Outcomes, stack: Stack, tmp_path: Path) -> None:
    _settled(outcomes)
    port = int(stack.address.rsplit(":", 1)[1])
    headers = {"x-api-key": outcomes.key}
    with run_envoy(port, tmp_path) as envoy, httpx.Client(base_url=envoy.base_url, timeout=10) as http:
        got = http.get("/v1/stats", headers=headers,
                       params={"granularity": "STATS_GRANULARITY_HOUR", "group_by": "STATS_GROUP_BY_TAG"})
        assert got.status_code == 200, got.text
        body = got.json()
        assert body["granularity"] == "STATS_GRANULARITY_HOUR" and body["group_by"] == "STATS_GROUP_BY_TAG"
        assert body["totals"]["sent"] == "5"  # int64 as a JSON string (proto3 JSON mapping)
        assert {g.get("tag", "") for g in body["groups"]} == {"", "eu", "welcome"}
        assert body["failures"]["bounce_codes"] == [{"smtp_code": 550, "count": "1"}]
        assert body["start_time"].endswith("Z")
        paged = http.get("/v1/stats", headers=headers, params={"group_by": "STATS_GROUP_BY_TAG", "page_size": 2}).json()
        assert len(paged["groups"]) == 2 and paged["next_page_token"]
        last = http.get("/v1/stats", headers=headers, params={"group_by": "STATS_GROUP_BY_TAG", "page_size": 2,
                                                              "page_token": paged["next_page_token"]}).json()
        assert [g["tag"] for g in last["groups"]] == ["welcome"] and not last.get("next_page_token")
        foreign = http.get("/v1/stats", headers=headers, params={"page_token": paged["next_page_token"]})
        assert foreign.status_code == 400 and "page_token" in foreign.text
        bad = http.get("/v1/stats", headers=headers,
                       params={"start_time": "2020-01-01T00:00:00Z", "end_time": "2021-02-05T00:00:00Z"})
        assert bad.status_code == 400 and "end_time" in bad.text
        mixed = http.get("/v1/stats", headers=headers, params={"tag": "eu", "group_by": "STATS_GROUP_BY_TEMPLATE"})
        assert mixed.status_code == 400 and "group_by" in mixed.text


def test_cli_prints_a_table_and_json(outcomes: Outcomes, stack: Stack) -> None:
    _settled(outcomes)
    env = {**base_env(), "POSTWIRE_ADDRESS": stack.address, "POSTWIRE_API_KEY": outcomes.key}
    table = subprocess.run([POSTWIRE, "stats", "--by", "tag"], env=env, cwd=REPO, capture_output=True, text=True,
                           timeout=30)
    assert table.returncode == 0, table.stderr
    assert table.stdout.splitlines()[0].split()[:4] == ["DAY", "GROUP", "SENT", "DELIVERED"]
    assert "welcome" in table.stdout and "top bounce codes: 550 (1)" in table.stdout
    as_json = subprocess.run([POSTWIRE, "stats", "--json", "--granularity", "hour"], env=env, cwd=REPO,
                             capture_output=True, text=True, timeout=30)
    assert as_json.returncode == 0 and '"granularity": "STATS_GRANULARITY_HOUR"' in as_json.stdout
    wrong = subprocess.run([POSTWIRE, "stats", "--tag", "eu", "--template", "tpl_x"], env=env, cwd=REPO,
                           capture_output=True, text=True, timeout=30)
    assert wrong.returncode != 0 and "Traceback" not in wrong.stderr and "template_id" in wrong.stderr
