"""ice._Mailbox: the part of asyncio.Queue that aioice uses, checked against
asyncio.Queue itself (same items, same order, same wake-ups under cancellation)."""

from __future__ import annotations

import asyncio
import sys

import pytest

from webrtc_secure import ice


@pytest.mark.parametrize("kind", ["queue", "mailbox"])
async def test_behaves_as_asyncio_queue(kind: str) -> None:
    queue: ice._Mailbox[int] | asyncio.Queue[int] = (
        asyncio.Queue() if kind == "queue" else ice._Mailbox()
    )
    assert queue.empty() and queue.qsize() == 0
    with pytest.raises(asyncio.QueueEmpty):
        queue.get_nowait()
    for item in (1, 2, 3):
        queue.put_nowait(item)
    assert queue.qsize() == 3 and not queue.empty()
    assert [await queue.get(), queue.get_nowait(), await queue.get()] == [1, 2, 3]
    # two getters wait; one is cancelled after being woken: the item goes to the other
    first = asyncio.ensure_future(queue.get())
    second = asyncio.ensure_future(queue.get())
    await asyncio.sleep(0)
    queue.put_nowait(4)
    first.cancel()
    await asyncio.sleep(0)
    assert first.cancelled()
    assert await asyncio.wait_for(second, 1) == 4
    assert queue.empty()
    # a getter cancelled before anything came leaves no trace
    third = asyncio.ensure_future(queue.get())
    await asyncio.sleep(0)
    third.cancel()
    await asyncio.sleep(0)
    queue.put_nowait(5)
    assert await asyncio.wait_for(queue.get(), 1) == 5


async def test_listener_takes_items_or_lets_them_queue() -> None:
    seen: list[int] = []
    mailbox: ice._Mailbox[int] = ice._Mailbox(lambda item: seen.append(item) or item > 1)
    mailbox.put_nowait(1)  # seen, not taken: queued
    mailbox.put_nowait(2)  # taken
    assert seen == [1, 2] and mailbox.qsize() == 1 and mailbox.get_nowait() == 1


def test_holds_less_than_an_asyncio_queue() -> None:
    queue: asyncio.Queue[int] = asyncio.Queue()
    held = sys.getsizeof(queue._getters) + sys.getsizeof(queue._putters)  # type: ignore[attr-defined]
    held += sys.getsizeof(queue._queue)  # type: ignore[attr-defined]
    mailbox: ice._Mailbox[int] = ice._Mailbox()
    assert mailbox._items is None and mailbox._getters is None  # nothing until used
    assert sys.getsizeof(mailbox) < held / 4
