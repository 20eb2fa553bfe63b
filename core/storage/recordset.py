"""One INSERT for any number of rows on PostgreSQL: the rows travel as one JSON document
read by `json_to_recordset`, so the SQL text is the same for every batch (psycopg parses
it once and prepares it on the server after a few uses) and the one parameter is dumped
by orjson (a fifth of the stdlib encoder's time per row; datetimes as RFC 3339). A multi-row VALUES list is new text for every batch size,
compiled by SQLAlchemy and parsed by psycopg each time; arrays (`unnest`), one per
column, cost as much again in psycopg's Python array quoting.

The statement's parameters are `rows` (the JSON list of objects with the per-row
columns) and whatever the `fixed` expressions name (e.g. `%(now)s`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import orjson


def recordset_insert(
    table: str, per_row: Sequence[tuple[str, str]], fixed: Sequence[tuple[str, str]] = (), returning: str = ""
) -> str:
    """INSERT INTO `table` the `per_row` (column, PostgreSQL type) values of each JSON row,
    in the rows' order (ORDINALITY: serial ids follow it), plus the `fixed` (column, SQL
    expression) values shared by every row."""
    names = ", ".join(name for name, _ in per_row)
    types = ", ".join(f"{name} {kind}" for name, kind in per_row)
    columns = ", ".join([names, *(name for name, _ in fixed)])
    values = ", ".join([names, *(expression for _, expression in fixed)])
    return (
        f"INSERT INTO {table} ({columns}) SELECT {values} "
        f"FROM ROWS FROM (json_to_recordset(%(rows)s::json) AS ({types})) WITH ORDINALITY AS r({names}, n) "
        f"ORDER BY n{f' RETURNING {returning}' if returning else ''}"
    )


def rows_json(rows: Sequence[Mapping[str, Any]]) -> str:
    """The `rows` parameter: the rows as one JSON array."""
    try:
        return orjson.dumps(rows).decode()
    except orjson.JSONEncodeError:  # a lone surrogate (from a message parsed with surrogateescape)
        return json.dumps(rows, default=_iso)


def _iso(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")
