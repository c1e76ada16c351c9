"""Runs the server drives: each one a task of its own, its events numbered and kept for whoever listens.

A run belongs to the server, not to the WebSocket or HTTP request that started it: a client that goes
away leaves it running (its events are stored), one that comes back asks for the events after the last
``seq`` it saw and then follows the rest. ``seq`` numbers every event a client receives, tokens
included, from 1. Runs finished in this process stay here (the last ``keep`` of them) so a reconnect
replays the tokens too; older runs and runs of an earlier server are read from the store, which keeps
every event but the tokens (the ``Answer`` event holds their text).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator
from typing import Any

from ..agents.manager import SessionManager
from ..events import Error, Event, RunFinished
from ..exceptions import LLMAgentError
from ..run_requests import RunRequest

_log = logging.getLogger(__name__)


class RunRefused(LLMAgentError):
    """A run that could not start (the sandbox could not start, a cassette is missing, ...)."""


class SessionBusy(RunRefused):
    """The session is running another request of this server."""


class LiveRun:
    """One run's events as they arrive, with a way to wait for more."""

    def __init__(self, session_id: str):
        self.session_id = session_id
        self.run_id = ""
        self.events: list[dict[str, Any]] = []
        self.done = False
        self.task: asyncio.Task[None] | None = None
        self._more = asyncio.Event()

    @property
    def status(self) -> str:
        """"running" until its ``RunFinished`` went out, then that event's status."""
        if self.finishing:
            return str(self.events[-1].get("status", "error"))
        return "error" if self.done else "running"

    @property
    def finishing(self) -> bool:
        """``RunFinished`` was sent; the run is only storing its last events."""
        return bool(self.events) and self.events[-1].get("type") == RunFinished.type

    def add(self, event: dict[str, Any]) -> None:
        event["seq"] = len(self.events) + 1
        self.events.append(event)
        self._more.set()
        self._more = asyncio.Event()

    def finish(self) -> None:
        """The run is over and its session free for the next one (after ``RunFinished``, once it is stored)."""
        self.done = True
        self._more.set()

    async def follow(self, after: int = 0) -> AsyncIterator[dict[str, Any]]:
        """The events with ``seq > after``, then each new one until the run ends."""
        async for batch in self.batches(after):
            for event in batch:
                yield event

    async def batches(self, after: int = 0) -> AsyncIterator[list[dict[str, Any]]]:
        """``follow`` by the list of what has arrived since the last one (a burst of tokens at once)."""
        index = max(after, 0)
        while True:
            more = self._more
            if index < len(self.events):
                batch = self.events[index:]
                index += len(batch)
                yield batch
            elif self.done:
                return
            else:
                await more.wait()


class RunHub:
    """Starts runs on sessions of one ``SessionManager`` and keeps them findable by run id."""

    def __init__(self, manager: SessionManager, keep: int = 200):
        self.manager = manager
        self.keep = keep
        self.runs: OrderedDict[str, LiveRun] = OrderedDict()
        self._current: dict[str, LiveRun] = {}

    def find(self, run_id: str) -> LiveRun | None:
        return self.runs.get(run_id)

    def current(self, session_id: str) -> LiveRun | None:
        live = self._current.get(session_id)
        return live if live is not None and not live.done else None

    async def start(self, session_id: str, request: RunRequest) -> LiveRun:
        """Start ``request`` on the session; returns once the run has its id (its first event)."""
        busy = self.current(session_id)
        if busy is not None and busy.finishing and busy.task is not None:
            # Its RunFinished went out, it is writing its last events: a client that saw it may go on. Once its
            # session has queued those writes (in order, ahead of the next run's) there is nothing to wait for.
            session = self.manager.find(session_id)
            if session is None or session.running:
                with contextlib.suppress(Exception):
                    await asyncio.shield(busy.task)
            busy = self.current(session_id) if session is None or session.running else None
        if busy is not None:
            raise SessionBusy(f"Session {session_id!r} is already running {busy.run_id}; "
                             "stop it (a stop request) or wait for it to finish.")
        live = LiveRun(session_id)
        self._current[session_id] = live
        try:
            # The run's first event is taken here, in the request's own turn of the loop: on a busy server a
            # new request should not wait for a task to be scheduled behind every other run's tokens.
            session = await self.manager.open(session_id)
            events = session.run(request)
            first = await anext(events)
        except StopAsyncIteration:
            del self._current[session_id]
            raise RunRefused("The run ended before it started.") from None
        except BaseException as exc:
            if self._current.get(session_id) is live:
                del self._current[session_id]
            if isinstance(exc, Exception):
                raise RunRefused(str(exc)) from exc
            raise
        live.run_id = first.run_id
        self._remember(live)
        live.add(first.to_dict())
        live.task = asyncio.create_task(self._drive(live, events))
        return live

    async def _drive(self, live: LiveRun, events: AsyncIterator[Event]) -> None:
        try:
            async for event in events:
                live.add(event.to_dict())
        except asyncio.CancelledError:  # the server is stopping
            raise
        except Exception as exc:  # noqa: BLE001  # a bug: the run's watchers hear of it as the run's end
            _log.exception("run %s of %s failed", live.run_id, live.session_id)
            live.add(Error("internal", f"The run stopped: {exc}", run_id=live.run_id).to_dict())
            live.add(RunFinished("error", run_id=live.run_id).to_dict())
        finally:
            live.finish()

    def _remember(self, live: LiveRun) -> None:
        self.runs[live.run_id] = live
        while len(self.runs) > self.keep:
            oldest = next(iter(self.runs))
            if not self.runs[oldest].done:
                break
            del self.runs[oldest]

    def stop(self, run_id: str) -> bool:
        """Cancel the run (it ends "cancelled"); False when it is not running here."""
        live = self.runs.get(run_id)
        if live is None or live.done or live.finishing:  # a finishing run is writing its status: let it
            return False
        session = self.manager.find(live.session_id)
        return bool(session is not None and session.cancel())

    async def stop_all(self) -> None:
        running = [live for live in self.runs.values() if not live.done]
        for live in running:
            self.stop(live.run_id)
        for live in running:
            if live.task is not None:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await asyncio.wait_for(asyncio.shield(live.task), 30)
