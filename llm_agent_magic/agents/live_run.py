"""One run of a session as it happens (``LiveRun``): its events numbered as they are emitted (``Event.seq``, 1, 2,
... tokens included, stored with that number), who follows them, and its stop. ``AgentSession.start_run`` makes it;
``runs.RunRegistry`` finds, follows, stops and answers the runs of a session service. Apart from the registry so a
session and the registry each import it, and not each other.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

from ..events import Event, RunFinished


class LiveRun:
    """One run of a session as it happens: its events, numbered, and a way to wait for more."""

    def __init__(self, session_id: str, run_id: str):
        self.session_id = session_id
        self.run_id = run_id
        self.events: list[Event] = []
        #: ``events`` as the wire has them (``to_dict()`` with their ``seq``), made once for every reader.
        self.wire: list[dict[str, Any]] = []
        #: The agent's work; set by the session once it started it.
        self.task: asyncio.Task[None] | None = None
        #: The task began (from then on a stop cancels it; before, it is asked to stop as it begins).
        self.began = False
        self.stop_asked = False
        #: Over, and what it wrote is stored.
        self.done = False
        self._more = asyncio.Event()
        self._over = asyncio.Event()

    @property
    def finishing(self) -> bool:
        """Its ``RunFinished`` went out; the run is only storing its last events."""
        return bool(self.events) and isinstance(self.events[-1], RunFinished)

    @property
    def running(self) -> bool:
        """Still working: neither finishing nor over (a stop or an approval can still reach it)."""
        return not self.done and not self.finishing

    @property
    def status(self) -> str:
        """ "running" until its ``RunFinished`` went out, then that event's status."""
        last = self.events[-1] if self.events else None
        if isinstance(last, RunFinished):
            return last.status
        return "error" if self.done else "running"

    def add(self, event: Event) -> dict[str, Any]:
        """Number ``event`` (the next ``seq``), keep it and wake who follows; returns its wire form."""
        event.seq = len(self.events) + 1
        data = event.to_dict()
        self.events.append(event)
        self.wire.append(data)
        self._more.set()
        self._more = asyncio.Event()
        return data

    def stop(self) -> bool:
        """Cancel the run's work (it ends "cancelled"); False when it is finishing or over."""
        if not self.running:
            return False
        self.stop_asked = True
        if self.began and self.task is not None:
            self.task.cancel()
        return True

    def finish(self) -> None:
        """The run is over (its writes are stored): followers get what is left, then stop."""
        self.done = True
        self._more.set()
        self._over.set()

    async def stored(self) -> None:
        """Wait until the run is over and what it wrote is in the store."""
        await self._over.wait()

    async def batches(self, after: int = 0) -> AsyncIterator[list[dict[str, Any]]]:
        """The wire events with ``seq > after``, then each new arrival until the run is over, by the list of what
        arrived since the last one (a burst of tokens at once)."""
        index = max(after, 0)
        while True:
            more = self._more
            if index < len(self.wire):
                batch = self.wire[index:]
                index += len(batch)
                yield batch
            elif self.done:
                return
            else:
                await more.wait()

    async def follow(self, after: int = 0) -> AsyncIterator[dict[str, Any]]:
        """``batches`` one wire event at a time."""
        async for batch in self.batches(after):
            for event in batch:
                yield event

    async def follow_events(self, after: int = 0) -> AsyncIterator[Event]:
        """The typed events with ``seq > after``, then each new one until its ``RunFinished`` (or its end)."""
        index = max(after, 0)
        while True:
            more = self._more
            if index < len(self.events):
                event = self.events[index]
                index += 1
                yield event
                if isinstance(event, RunFinished):
                    return
            elif self.done:
                return
            else:
                await more.wait()


async def follow_to_end(live: LiveRun) -> AsyncGenerator[Event, None]:
    """The run's typed events until its ``RunFinished``; a caller that stops listening before that stops the run.
    Returns once the run's writes are stored."""
    finished = False
    try:
        async for event in live.follow_events():
            finished = isinstance(event, RunFinished)
            yield event
    finally:
        if not finished:
            live.stop()
        await live.stored()
