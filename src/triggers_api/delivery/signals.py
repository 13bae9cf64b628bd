"""Hear SIGTERM/SIGINT before the server's graceful shutdown runs its course.

uvicorn's shutdown first waits (up to its grace period) for open connections to finish, and only
then runs the lifespan shutdown. Live streams never finish by themselves, and the worker would
keep claiming during that wait. So, while uvicorn serves, its signal handler is wrapped: the
registered callbacks run on the event loop at once (streams end, the worker stops claiming),
then uvicorn's handler proceeds as before. Outside uvicorn (tests, ``triggers-api worker``) no
handler is wrapped.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

from triggers_api.runtime import Services

Callback = Callable[[], None]
_HOOKED = "_exit_signal_hooked"


def on_exit_signal(services: Services, callback: Callback) -> None:
    services.extras.setdefault("on_exit_signal", []).append(callback)
    if services.extras.get(_HOOKED):
        return
    services.extras[_HOOKED] = True
    saved: dict[int, Any] = {}

    async def install() -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        loop = asyncio.get_running_loop()
        callbacks: list[Callback] = services.extras["on_exit_signal"]
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous = signal.getsignal(sig)
            if not callable(previous) or previous is signal.default_int_handler:
                continue  # not a server's handler: leave the process's own behaviour alone

            def handler(signum: int, frame: FrameType | None, previous: Any = previous) -> None:
                for callback in callbacks:
                    loop.call_soon_threadsafe(callback)
                previous(signum, frame)

            saved[sig] = previous
            signal.signal(sig, handler)

    async def uninstall() -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for sig, previous in saved.items():
            signal.signal(sig, previous)
        saved.clear()

    services.extras.setdefault("on_startup", []).append(install)
    services.extras.setdefault("on_shutdown", []).append(uninstall)
