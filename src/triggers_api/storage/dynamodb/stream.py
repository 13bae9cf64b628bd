"""The live stream's reads on DynamoDB: positions that grow in commit order, with no gap and no
repeat, although DynamoDB has no commit order.

A write takes its positions from the clock when it starts: ``<µs> * 1000 + <slot>`` (consecutive
slots for a batch, a random first slot so two processes writing in the same microsecond rarely
collide, and never below this process's previous write). Readers see only positions older than
the *settle window* (``stream_settle_s``, 2 s by default): a write that started before the
window has finished (a write is bounded: its retries give up well within it), so nothing can
still appear below what a reader already passed. The price is that the stream and the long
poll run ``stream_settle_s`` behind; the limits (a write slower than the window, clocks of
different hosts more than the window apart, a same-microsecond collision) are in
docs/deploy-aws.md.
"""

from __future__ import annotations

import asyncio
import heapq
from typing import Any

from triggers_api.storage.base import StreamItem, now_us
from triggers_api.storage.dynamodb import schema
from triggers_api.storage.dynamodb.core import DynamoCore, Item, event_from_item, get_n, get_s, n, s


class StreamPart(DynamoCore):
    def _watermark(self) -> int:
        """The highest position readers may see now."""
        settled_us = now_us() - self.stream_settle_us
        return settled_us * schema.POSITIONS_PER_US + schema.POSITIONS_PER_US - 1

    async def stream_head(self) -> int:
        watermark = self._watermark()

        async def shard(name: str) -> int:
            found = await self._query(
                limit=1,
                TableName=self.names.events,
                IndexName="StreamHeadIndex",
                KeyConditionExpression="stream_shard = :p AND stream_pos <= :w",
                ExpressionAttributeValues={":p": s(name), ":w": n(watermark)},
                ScanIndexForward=False,
            )
            return get_n(found[0], "stream_pos") if found else 0

        return max(await asyncio.gather(*(shard(p) for p in schema.global_shards("stream"))))

    async def stream_start(self) -> int:
        """The clock's position now: a write that started before it took a smaller position
        (positions come from the clock when a write starts, and never go back), so a stream
        starting here skips what was stored before it opened, although the head lags behind
        by the settle window. (The head too, in case another host's clock runs ahead.)"""
        clock = (max(now_us(), self._last_position_us) + 1) * schema.POSITIONS_PER_US - 1
        return max(clock, await self.stream_head())

    async def stream_position(self, user_id: str, event_id: str) -> int | None:
        item = await self._event_item(user_id, event_id)  # type: ignore[attr-defined]
        return None if item is None else get_n(item, "stream_pos")

    async def events_after(
        self, user_id: str, position: int, event_type: str | None, limit: int
    ) -> list[StreamItem]:
        watermark = self._watermark()
        if limit <= 0 or position >= watermark:
            return []

        async def shard(user_shard: str) -> list[Item]:
            params: dict[str, Any] = {
                "TableName": self.names.events,
                "IndexName": "StreamIndex",
                "KeyConditionExpression": "user_shard = :u AND stream_pos BETWEEN :p AND :w",
                "ExpressionAttributeValues": {":u": s(user_shard), ":p": n(position + 1), ":w": n(watermark)},
            }
            if event_type is not None:
                params["FilterExpression"] = "event_type = :t"
                params["ExpressionAttributeValues"][":t"] = s(event_type)
            return await self._query(limit=limit, **params)

        parts = await asyncio.gather(*(shard(u) for u in await self._read_shards(user_id)))
        merged = heapq.merge(*parts, key=lambda i: get_n(i, "stream_pos"))
        keys = [i for _, i in zip(range(limit), merged, strict=False)]
        items = await self._batch_get(
            self.names.events, [{"user_shard": k["user_shard"], "ts_id": k["ts_id"]} for k in keys]
        )
        by_key = {get_s(i, "ts_id"): i for i in items}
        out: list[StreamItem] = []
        for key in keys:
            item = by_key.get(get_s(key, "ts_id"))
            if item is not None:  # deleted by retention in between: skipped, as a SQL reader would
                out.append(StreamItem(get_n(item, "stream_pos"), event_from_item(item)))
        return out
