"""Analytics: per-account counts of the event log's events by hour, tag and template,
kept by an exact rollup (rollup.py) and read by GetStats (query.py)."""
