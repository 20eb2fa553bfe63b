"""Email delivery: the actor with its guard steps (actor), SMTP sessions over
relays (smtp) and their connection pools (pool), classification of SMTP outcomes
(classify), and per-domain concurrency limits (domain_limits)."""
