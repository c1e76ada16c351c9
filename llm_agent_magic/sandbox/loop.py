"""The private event loop every sandbox kernel of this process runs on, and the blocking wrappers over it."""

from __future__ import annotations

import asyncio
import functools
import os
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class SandboxLoop:
    """One event loop thread per process that owns every sandbox kernel's sockets and processes.

    Why not the caller's loop: the magic runs inside the user's kernel, whose loop is already running
    (so ``asyncio.run`` is impossible); zmq sockets are tied to the loop that created them; and
    bubblewrap's ``--die-with-parent`` fires when the *thread* that launched it exits, so the launching
    thread must live as long as the kernel.
    """

    _instance: SandboxLoop | None = None
    _guard = threading.Lock()

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, name="llm-agent-sandbox-loop", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    @classmethod
    def get(cls) -> SandboxLoop:
        with cls._guard:
            # A forked child inherits the object but not the thread: it needs its own.
            if cls._instance is None or cls._instance.pid != os.getpid():
                cls._instance = cls()
            return cls._instance

    async def call(self, coro: Coroutine[Any, Any, T]) -> T:
        """Await ``coro`` on the sandbox loop from any event loop."""
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self.loop:
            return await coro
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self.loop))

    def call_sync(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the sandbox loop and block until it is done (works inside a running loop too)."""
        if threading.current_thread() is self.thread:
            coro.close()
            raise RuntimeError("sandbox sync methods cannot be called from the sandbox loop; await the async_* ones")
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result()
        except KeyboardInterrupt:
            # The user interrupted their own kernel: stop the sandbox work too (execute interrupts the sandbox).
            future.cancel()
            raise


def run_sync(method: Callable[..., Awaitable[T]]) -> Callable[..., T]:
    """The blocking twin of an ``async_*`` method of an object with a ``_loop: SandboxLoop``."""

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> T:
        result: T = self._loop.call_sync(method(self, *args, **kwargs))
        return result

    wrapper.__doc__ = f"Blocking version of ``{method.__name__}``." + ("\n\n" + method.__doc__ if method.__doc__ else "")
    return wrapper
