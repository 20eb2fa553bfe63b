"""Delivery messages that carry several email ids: the publisher coalesces concurrent
publishes into one confirmed message, and a worker attempts every id of a batch, a
crashed attempt going on in a message of its own."""

from __future__ import annotations

import asyncio

import dramatiq
import pytest

from core.delivery.queue import DELIVER_ACTOR, Publisher, WebhookPublisher, make_broker
from core.settings import Settings
from workers.delivery.batch import deliver_batch


class FakeChannel:
    def __init__(self, fail: bool = False) -> None:
        self.bodies: list[bytes] = []
        self.fail = fail

    async def publish(self, queue: str, body: bytes) -> None:
        await asyncio.sleep(0.01)  # a confirm's round trip: publishes meanwhile wait together
        if self.fail:
            raise RuntimeError("broker down")
        self.bodies.append(body)

    def args(self) -> list[object]:
        return [dramatiq.Message.decode(b).args[0] for b in self.bodies]


def publisher(cls: type[Publisher] = Publisher, fail: bool = False) -> tuple[Publisher, FakeChannel]:
    settings = Settings(broker_url="stub://", secret_key="x" * 32, database_url="sqlite+aiosqlite://")
    p = cls(make_broker(settings), settings)
    channel = FakeChannel(fail)
    p.confirmed = channel  # type: ignore[assignment]
    return p, channel


async def test_a_lone_publish_carries_its_id_alone() -> None:
    p, channel = publisher()
    await p.publish(7)
    assert channel.args() == [7]
    assert dramatiq.Message.decode(channel.bodies[0]).actor_name == DELIVER_ACTOR


async def test_concurrent_publishes_share_messages_carrying_lists_of_ids() -> None:
    p, channel = publisher()
    await asyncio.gather(*(p.publish(i) for i in range(200)))
    ids = [i for a in channel.args() for i in (a if isinstance(a, list) else [a])]
    assert sorted(ids) == list(range(200))  # every id, once
    assert len(channel.bodies) < 20 and any(isinstance(a, list) for a in channel.args())
    assert all(len(a) <= Publisher.MAX_BATCH for a in channel.args() if isinstance(a, list))


async def test_every_caller_of_a_failed_batch_sees_the_failure() -> None:
    p, _ = publisher(fail=True)
    results = await asyncio.gather(*(p.publish(i) for i in range(5)), return_exceptions=True)
    assert all(isinstance(r, RuntimeError) for r in results)


async def test_webhook_publishes_stay_one_id_per_message() -> None:
    p, channel = publisher(WebhookPublisher)
    channel_publish = channel.publish

    async def publish(queue: str, body: bytes, **_: object) -> None:
        await channel_publish(queue, body)

    channel.publish = publish  # type: ignore[method-assign]
    await asyncio.gather(*(p.publish(i) for i in range(5)))
    assert sorted(channel.args()) == [0, 1, 2, 3, 4]  # type: ignore[type-var]


class FakeDeliverer:
    def __init__(self, crash: set[int]) -> None:
        self.crash = crash
        self.attempted: list[int] = []

    async def deliver(self, email_id: int) -> None:
        self.attempted.append(email_id)
        if email_id in self.crash:
            raise ValueError(f"bug with {email_id}")


async def test_a_batch_attempts_every_email_and_hands_a_crashed_one_to_its_own_message() -> None:
    deliverer, alone = FakeDeliverer({2}), []

    async def enqueue_alone(email_id: int) -> None:
        alone.append(email_id)

    await deliver_batch(deliverer, [1, 2, 3], enqueue_alone)  # type: ignore[arg-type]
    assert sorted(deliverer.attempted) == [1, 2, 3]
    assert alone == [2]


async def test_a_batch_whose_crashed_attempt_cannot_be_handed_off_is_retried_whole() -> None:
    deliverer = FakeDeliverer({3})

    async def enqueue_alone(email_id: int) -> None:
        raise ConnectionError("broker down")

    with pytest.raises(ValueError, match="bug with 3"):
        await deliver_batch(deliverer, [1, 3], enqueue_alone)  # type: ignore[arg-type]
