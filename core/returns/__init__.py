"""What comes back: VERP return paths, inbound reports (bounces, complaints), their
parsing and outcomes, and one-click unsubscribe tokens."""
