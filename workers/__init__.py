"""Dramatiq workers and the scheduler: protocol adapters between the queue and the
outside world. `app` wires a worker process; `delivery/` sends emails over SMTP,
`webhooks/` posts events over HTTP, `scheduler` feeds the queue from the database.
workers/ imports core/ and never server/ (docs/architecture.md)."""
