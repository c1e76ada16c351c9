"""``KernelKeeper``: how long the sandbox kernels of one ``SessionManager``'s sessions live.

A kernel (~135 MB) is started only when a session first needs one (``SandboxKernel.before_start`` is
``admit``), so a run that executes no code starts none. Then:

- at most ``SandboxConfig.max_live_kernels`` kernels live at once: a session that needs one more stops the
  least recently used idle kernel first; when all are in use by runs it waits for one to finish (up to
  ``session_wait_timeout``), then fails with ``KernelsBusy``, saying so;
- a kernel unused for ``SandboxConfig.idle_timeout`` seconds is stopped; its variables come back from the
  snapshots at the session's next execution (the sandbox restores them whenever it starts a kernel);
- a session unused that long that has no kernel is closed (its conversation stays in the store; the next
  request opens it again), so a server answering many one-off requests does not keep a session for each.

"Used" is a run (start and end), a push or a reset, and opening the session; listing variables and reading
snapshots are not use. A kernel whose session is running, waits for an approval, or whose run lock is held
by anyone (a run of this or another process, ``%agent vars``) is never stopped: stopping takes the lock
without waiting. ``clock`` is injectable so tests move time instead of sleeping.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..config import SandboxConfig
from ..exceptions import KernelsBusy, SessionBusy
from ..sandbox import SandboxKernel

if TYPE_CHECKING:
    from .session import AgentSession

_log = logging.getLogger(__name__)
#: Seconds between two looks for a kernel to stop while every live one is in use.
BUSY_POLL = 0.1
#: Longest pause between two sweeps for idle kernels (they run at a quarter of idle_timeout when that is shorter).
MAX_SWEEP_INTERVAL = 30.0


class KernelKeeper:
    """Admits, sweeps and stops the sandbox kernels of the sessions in ``sessions`` (the manager's own dict)."""

    def __init__(
        self,
        sessions: dict[str, AgentSession],
        settings: Callable[[], SandboxConfig],
        clock: Callable[[], float] = time.monotonic,
    ):
        self.sessions = sessions
        self.settings = settings
        self.clock = clock
        self._admission = asyncio.Lock()
        self._admitted: set[SandboxKernel] = set()  # admitted (until stopped or gone), maybe not started yet
        self._sweeper: asyncio.Task[None] | None = None

    # --- what is live ----------------------------------------------------------------------------------
    def live(self) -> list[str]:
        """Ids of the sessions whose sandbox has a kernel (or is starting one), least recently used first."""
        ours = {id(s.sandbox) for s in self.sessions.values()}
        self._admitted = {s for s in self._admitted if not s.gone and id(s) in ours}
        return [
            sid
            for sid, session in sorted(self.sessions.items(), key=lambda item: item[1].last_used)
            if session.sandbox is not None and session.sandbox.started
        ]

    @staticmethod
    def in_use(session: AgentSession) -> bool:
        """A run of this process is going in the session, waits for an approval, or holds its lock."""
        return bool(session.running or session.waiting_for_approval or (session.run_lock is not None and session.run_lock.held))

    # --- starting one more -----------------------------------------------------------------------------
    async def admit(self, sandbox: SandboxKernel) -> None:
        """``SandboxKernel.before_start``: make room under ``max_live_kernels`` before ``sandbox`` starts one."""
        session = next((s for s in self.sessions.values() if s.sandbox is sandbox), None)
        if session is None:  # not one of ours (closed meanwhile): nothing to count it against
            return
        session.touch()
        self.start_sweeping()
        settings = self.settings()
        async with self._admission:
            if sandbox.started or sandbox in self._admitted:
                return
            limit = settings.max_live_kernels
            deadline = time.monotonic() + settings.session_wait_timeout
            while limit:
                others = [sid for sid in self.live() if self.sessions[sid] is not session]
                others += [s.session_id for s in self._admitted if s is not sandbox and s.session_id not in others]
                if len(others) < limit:
                    break
                if await self._stop_one_of(others):
                    continue
                if time.monotonic() >= deadline:
                    raise KernelsBusy(session.session_id, limit, settings.session_wait_timeout)
                await asyncio.sleep(BUSY_POLL)
            self._admitted.add(sandbox)

    async def _stop_one_of(self, session_ids: list[str]) -> bool:
        """Stop the least recently used idle kernel among these sessions'; False when each is in use."""
        for sid in session_ids:  # least recently used first
            session = self.sessions.get(sid)
            if session is not None and await self.stop_kernel(session):
                return True
        return False

    async def stop_kernel(self, session: AgentSession) -> bool:
        """Stop the session's kernel unless something uses it; True when it was stopped."""
        sandbox = session.sandbox
        if sandbox is None or not sandbox.started or self.in_use(session):
            return False
        try:
            async with session.using_sandbox("a stop of its idle sandbox kernel", wait=0):
                if session.running:  # a run started while the lock was taken: it waits for the lock, not us
                    return False
                await sandbox.async_stop()
        except SessionBusy:  # a run of another process (or a listing) holds the kernel
            return False
        self._admitted.discard(sandbox)
        _log.info("llm-agent: stopped the sandbox kernel of session %r (idle)", session.session_id)
        return True

    # --- idle sessions ---------------------------------------------------------------------------------
    async def sweep(self) -> None:
        """Stop the kernels, and close the sessions without one, that were not used for ``idle_timeout`` s."""
        timeout = self.settings().idle_timeout
        if not timeout:
            return
        now = self.clock()
        for sid, session in list(self.sessions.items()):
            if now - session.last_used < timeout or self.in_use(session):
                continue
            if session.sandbox is not None and session.sandbox.started:
                try:
                    await self.stop_kernel(session)
                except Exception:  # noqa: BLE001  # one kernel that cannot be stopped must not keep the others running
                    _log.exception("llm-agent: the idle sandbox kernel of session %r could not be stopped", sid)
                continue
            if self.sessions.get(sid) is session and not self.in_use(session):
                del self.sessions[sid]  # no await since the check: nothing can start a run on it in between
                await session.close()

    def start_sweeping(self) -> None:
        """Sweep in the background, on the running loop, until ``stop_sweeping``."""
        loop = asyncio.get_running_loop()
        if self._sweeper is not None and not self._sweeper.done() and self._sweeper.get_loop() is loop:
            return
        self._sweeper = loop.create_task(self._sweep_forever())

    async def stop_sweeping(self) -> None:
        sweeper, self._sweeper = self._sweeper, None
        if sweeper is not None and not sweeper.done():
            sweeper.cancel()
            if sweeper.get_loop() is asyncio.get_running_loop():
                with contextlib.suppress(asyncio.CancelledError):
                    await sweeper

    async def _sweep_forever(self) -> None:
        while True:
            try:
                timeout = self.settings().idle_timeout
            except Exception:  # noqa: BLE001  # settings that cannot be read now (a config file being edited): look again later
                timeout = 0.0
            await asyncio.sleep(min(timeout / 4, MAX_SWEEP_INTERVAL) if timeout else MAX_SWEEP_INTERVAL)
            try:
                await self.sweep()
            except Exception:  # noqa: BLE001  # a background task: one failed sweep is logged, the next one runs
                _log.exception("llm-agent: the sweep for idle sandbox kernels failed")
