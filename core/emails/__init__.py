"""Emails, from request to stored row: the model (statuses, records), validation of a
Send (addresses, headers, sizes), the stored content and its MIME rendering, scheduling
windows, idempotency, and the accept use cases (service, store) with their post-commit
steps (after_commit)."""
