"""Rate limits: the contract (interface: budgets, quotas, decisions), the per-process
implementation (local) and the shared Redis one (redis_backend), which falls back on
the local one while Redis is unreachable. Neither implementation imports the other's
module back."""
