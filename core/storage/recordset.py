"""One INSERT for any number of rows on PostgreSQL: the rows travel as one JSON document
read by `json_to_recordset`, so the SQL text is the same for every batch (psycopg parses
it once and prepares it on the server after a few uses) and the one parameter is dumped
by the C JSON encoder. A multi-row VALUES list is new text for every batch size,
compiled by SQLAlchemy and parsed by psycopg each time; arrays (`unnest`), one per
column, cost as much again in psycopg's Python array quoting.

The statement's parameters are `rows` (the JSON list of objects with the per-row
columns) and whatever the `fixed` expressions name (e.g. `%(now)s`).
"""

from __future__ import annotations

from collections.abc import Sequence


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
