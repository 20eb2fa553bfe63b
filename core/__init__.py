"""The domain: what Postwire decides, with no knowledge of gRPC, Dramatiq or SMTP.

One subpackage per capability; each owns its tables' SQL and its rules:

    storage/        engine, schema, migrations, group commit, commit outcomes
    emails/         an email from request to stored row: model, validation, content, MIME
    events/         the per-account event log: appending, cursors, notify, retention
    delivery/       the delivery queue contract, claims and attempts, dead letters
    keys/           API keys: hashing, scopes, lookup cache
    limits/         rate limits: the contract, per-process and Redis implementations
    webhooks/       endpoints, signed deliveries, fan-out of events
    observability/  log context, JSON logs, Prometheus metrics, tracing

Beside them, the shared kernel every subpackage may import: errors (domain errors and
their status names), settings (the one Settings object), ids and times.
core/ imports neither server/ nor workers/ (docs/architecture.md).
"""
