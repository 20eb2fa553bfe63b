"""The event log: an append-only log per account read exactly by (txid, id) cursors,
whatever order transactions commit in (log, cursor), woken by LISTEN/NOTIFY (notify),
and pruned after the retention period (retention)."""
