"""Per-domain delivery slots: all or none across an email's domains, given back after."""

from __future__ import annotations

from core.settings import Settings
from workers.delivery.domain_limits import DomainLimiter


def _limiter(limit: int) -> DomainLimiter:
    return DomainLimiter(Settings(secret_key="x", redis_url="", domain_concurrency=limit))


async def test_a_domain_at_its_limit_refuses_and_frees_the_other_domains_taken() -> None:
    limiter = _limiter(1)
    async with limiter.hold(["b.example"]) as first:
        assert first
        async with limiter.hold(["a.example", "B.example"]) as second:
            assert not second
        async with limiter.hold(["a.example"]) as third:  # a.example was given back
            assert third
    async with limiter.hold(["b.example"]) as again:
        assert again


async def test_zero_means_no_limit() -> None:
    limiter = _limiter(0)
    async with limiter.hold(["x.example"]) as one, limiter.hold(["x.example"]) as two:
        assert one and two
