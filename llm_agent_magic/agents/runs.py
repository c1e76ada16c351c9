"""The runs of a session service, in one place: which run each session is running, its events numbered as they are
emitted, who follows them, stop and approval addressed by session *and* run, and "the events of run R after N".

A run is a ``LiveRun``, made by ``AgentSession.start_run`` (the session's ``live``): its events are numbered there, 1, 2,
... tokens included (``Event.seq``), and stored with that number, so a client asking for the events after N gets the
same events whether they come from memory or from the store. The store keeps every event but the tokens, and in
their place ``answer_part`` records (the streamed text so far), each numbered as the last token it holds whole
(``session.AnswerParts``).

``RunRegistry`` is the door front ends use (``SessionManager.runs``): it starts runs (``SessionBusy`` while the
session runs another), finds them by id, stops them and hands approvals to them, refusing a message whose run belongs
to another session than the one it was sent for (``RunOfAnotherSession``). A run belongs to the service, not to the
client that started it: a client that goes away leaves it running, and one that comes back asks for the events after
the last ``seq`` it saw. Finished runs stay in memory (the last ``keep`` of them) so a reconnect replays the tokens
too; older runs and runs of another process are read from the store.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from ..config import PathsConfig
from ..events import Event, events_from_store
from ..exceptions import LLMAgentError, NotWaitingForApproval, RunNotRunning, RunOfAnotherSession, RunRefused, SessionBusy
from ..run_requests import ApprovalReply, RunRequest
from ..store import ConversationStore
from .live_run import LiveRun, follow_to_end

if TYPE_CHECKING:
    from .session import AgentSession


class SessionSource(Protocol):
    """What the registry needs of the session service (``SessionManager`` is one): its open sessions, one found
    or opened by id, and where the data lives."""

    sessions: dict[str, AgentSession]

    def find(self, session_id: str) -> AgentSession | None: ...

    async def open(self, session_id: str, *, fresh: bool = False) -> AgentSession: ...

    def paths(self) -> PathsConfig: ...


@dataclass
class RunEvents:
    """What ``RunRegistry.events_after`` found: the events after N, the run's status and session, and the run itself
    when this process holds it (to follow the rest)."""

    run_id: str
    session_id: str
    status: str
    events: list[dict[str, Any]] = field(default_factory=list)
    live: LiveRun | None = None

    @property
    def running(self) -> bool:
        return self.live is not None and self.live.status == "running"


def numbered(stored: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Stored events with their ``seq``; those a run stored before events carried theirs are numbered by position."""
    return [e if e.get("seq") else {**e, "seq": i} for i, e in enumerate(stored, 1)]


class RunRegistry:
    """The runs of one ``SessionManager``'s sessions: start, find, follow, stop and approve, by session and run.

    ``keep`` finished runs stay in memory for clients that come back; ``where`` says where a run that is not here
    would have to run ("on this server"), in what a refused stop or approval answers.
    """

    def __init__(self, manager: SessionSource, *, keep: int = 20, where: str = "in this process"):
        self.manager = manager
        self.keep = keep
        self.where = where
        self.runs: OrderedDict[str, LiveRun] = OrderedDict()

    # --- finding -------------------------------------------------------------------------------------------
    def _lives(self) -> list[LiveRun]:
        """Runs held here: those started through the registry, and the current run of every open session."""
        found = dict(self.runs)
        for session in list(self.manager.sessions.values()):
            if session.live is not None:
                found.setdefault(session.live.run_id, session.live)
        return list(found.values())

    def find(self, run_id: str, session_id: str | None = None, action: str = "follow") -> LiveRun | None:
        """The run ``run_id`` held here, if any. With ``session_id``: ``RunOfAnotherSession`` when it is another
        session's (a message for one session never reaches another's run)."""
        self._prune()
        live = self.runs.get(run_id) or next((r for r in self._lives() if r.run_id == run_id), None)
        if live is not None and session_id is not None and live.session_id != session_id:
            raise RunOfAnotherSession(run_id, action)
        return live

    def current(self, session_id: str) -> LiveRun | None:
        """The run of the session that is not over yet (it may be finishing), or None."""
        session = self.manager.find(session_id)
        live = session.live if session is not None else None
        return live if live is not None and not live.done else None

    def running(self) -> list[str]:
        """Ids of the runs not over yet."""
        return [live.run_id for live in self._lives() if not live.done]

    # --- starting and stopping --------------------------------------------------------------------------------
    async def start(self, session_id: str, request: RunRequest) -> LiveRun:
        """Start ``request`` on the session; returns once the run has its id and first event (``RunStarted``).

        ``SessionBusy`` while the session is running another run (one that is finishing, its ``RunFinished`` sent,
        does not count: its last writes are queued ahead of the new run's); ``RunRefused`` when it cannot start.
        """
        try:
            session = await self.manager.open(session_id)
        except LLMAgentError as exc:
            raise RunRefused(str(exc)) from exc
        try:
            live = session.start_run(request)
        except SessionBusy:
            raise
        except LLMAgentError as exc:
            raise RunRefused(str(exc)) from exc
        self._remember(live)
        return live

    async def run(self, session_id: str, request: RunRequest) -> AsyncIterator[Event]:
        """Start ``request`` and yield its typed events until its ``RunFinished``; a caller that stops listening
        stops the run (``AgentSession.run``'s contract, through the registry)."""
        live = await self.start(session_id, request)
        async with contextlib.aclosing(follow_to_end(live)) as events:  # closed with this one: its end stops the run
            async for event in events:
                yield event

    def stop(self, session_id: str, run_id: str = "") -> str:
        """Stop the session's run ``run_id`` (its current run when ""); returns the id of the run stopped.

        ``RunOfAnotherSession`` when ``run_id`` is another session's; ``RunNotRunning`` when that run is over,
        finishing, or not here.
        """
        live = self.find(run_id, session_id, "stop") if run_id else self.current(session_id)
        if live is None or not live.stop():
            raise RunNotRunning(run_id or (live.run_id if live is not None else ""), self.where)
        return live.run_id

    def approve(self, session_id: str, reply: ApprovalReply) -> None:
        """Hand Run / Edit / Skip to the cell of the session's run that waits for it (on the loop's thread, as every
        method here); ``RunOfAnotherSession``, or ``NotWaitingForApproval`` saying what waits."""
        live = self.find(reply.run_id, session_id, "answer")
        session = self.manager.find(session_id)
        if live is None or not live.running or session is None:
            raise NotWaitingForApproval(
                f"Run {reply.run_id!r} is not running {self.where}, so it is not waiting for "
                f"an approval of cell {reply.cell_id!r}."
            )
        session.approve(reply)

    async def stop_all(self, timeout: float = 30.0) -> None:
        """Stop every run here and wait (up to ``timeout`` seconds each) until what they wrote is stored."""
        running = [live for live in self._lives() if not live.done]
        for live in running:
            live.stop()
        for live in running:
            if live.task is not None:
                with contextlib.suppress(asyncio.CancelledError, asyncio.TimeoutError, Exception):
                    await asyncio.wait_for(asyncio.shield(live.task), timeout)

    def _remember(self, live: LiveRun) -> None:
        self.runs[live.run_id] = live
        self._prune()

    def _prune(self) -> None:
        """Forget the oldest finished runs past ``keep`` (the store has them)."""
        while len(self.runs) > max(self.keep, 0):
            oldest = next(iter(self.runs))
            if not self.runs[oldest].done:
                break
            del self.runs[oldest]

    # --- the events of run R after N -----------------------------------------------------------------------------
    async def events_after(self, run_id: str, after: int = 0, *, session_id: str | None = None) -> RunEvents:
        """The run's events with ``seq > after``, from memory while this process holds the run, else from the store
        (``RunNotFound`` when there is no such run). With ``session_id``, a run of another session is refused
        (``RunOfAnotherSession``)."""
        live = self.find(run_id, session_id)
        if live is not None:
            return RunEvents(run_id, live.session_id, live.status, live.wire[max(after, 0) :], live)
        paths = self.manager.paths()

        def read() -> RunEvents:
            with ConversationStore.from_config(paths) as store:
                run = store.get_run(run_id)
                if session_id is not None and run.session_id != session_id:
                    raise RunOfAnotherSession(run_id, "follow")
                events = [e for e in numbered(store.run_events(run_id)) if e["seq"] > after]
            return RunEvents(run_id, run.session_id, run.status, events)

        return await asyncio.get_running_loop().run_in_executor(None, read)

    async def typed_events(self, run_id: str) -> tuple[list[Event], str]:
        """The run's events as typed events (without the store's progress records) and its session."""
        found = await self.events_after(run_id)
        return events_from_store(found.events), found.session_id
