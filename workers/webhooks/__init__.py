"""Webhook delivery: the actor (actor), one signed HTTP POST per delivery (delivery,
http), its outcome and retry schedule (outcome), and the scheduler's fan-out round
(dispatch)."""
