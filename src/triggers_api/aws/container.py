"""What one Lambda container keeps between invocations: an event loop and what runs on it.

A container serves one invocation at a time. Its clients (storage connections, HTTP pools)
belong to the event loop they were opened on, so each handler keeps *one* loop for the
container's life and runs every invocation on it. Built lazily on the first invocation, never
at import (the init phase stays short and a test can build its own).
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class ContainerLoop:
    """One event loop per container, made current before each invocation runs on it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()

    def activate(self) -> asyncio.AbstractEventLoop:
        """Make the loop current (Mangum and ``run`` use the current loop)."""
        asyncio.set_event_loop(self.loop)
        return self.loop

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.activate().run_until_complete(coro)

    def close(self) -> None:
        """For tests: end what still runs on the loop, then close it."""
        if self.loop.is_closed():
            return
        pending = [t for t in asyncio.all_tasks(self.loop) if not t.done()]
        for task in pending:
            task.cancel()
        if pending:
            self.loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        self.loop.close()
        asyncio.set_event_loop(None)
