"""The rows parameter of the accept path's recordset INSERTs (core.storage.recordset)."""

import json
from datetime import datetime, timezone

from core.storage.recordset import rows_json


def test_rows_become_one_json_array_with_rfc3339_times() -> None:
    at = datetime(2026, 12, 7, 15, 0, 1, 250000, tzinfo=timezone.utc)
    rows = [{"a": 1, "at": at, "text": "héllo\n"}, {"a": 2, "at": None, "text": ""}]
    parsed = json.loads(rows_json(rows))
    assert parsed == [{"a": 1, "at": "2026-12-07T15:00:01.250000+00:00", "text": "héllo\n"},
                      {"a": 2, "at": None, "text": ""}]


def test_a_lone_surrogate_still_encodes_as_the_stdlib_would() -> None:
    at = datetime(2026, 12, 7, tzinfo=timezone.utc)
    rows = [{"text": "bad \udce9 byte", "at": at}]
    assert json.loads(rows_json(rows)) == [{"text": "bad \udce9 byte", "at": at.isoformat()}]
