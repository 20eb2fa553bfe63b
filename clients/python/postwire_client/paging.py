"""Following AIP-158 pages: the SDK's `iter_*` methods call a List RPC with each
`next_page_token` until one is empty, yielding the items of every page."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any


def every(list_page: Callable[[str], Any], items: str) -> Iterator[Any]:
    """The `items` field of every page `list_page(page_token)` returns, in order."""
    token = ""
    while True:
        page = list_page(token)
        yield from getattr(page, items)
        token = page.next_page_token
        if not token:
            return


async def every_async(list_page: Callable[[str], Awaitable[Any]], items: str) -> AsyncIterator[Any]:
    """`every` for the async client."""
    token = ""
    while True:
        page = await list_page(token)
        for item in getattr(page, items):
            yield item
        token = page.next_page_token
        if not token:
            return
