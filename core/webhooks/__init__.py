"""Webhooks: endpoints and their encrypted secrets (manager, store, schema, signing,
urls), the events they receive (events), and fan-out of new events into signed
deliveries with their retry state (fanout, delivery_store). Sending them over HTTP is
workers/webhooks/."""
