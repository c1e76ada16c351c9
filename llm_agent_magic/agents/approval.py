"""Cells that wait for Run / Edit / Skip, and the replies front ends route to them.

A session has one ``ApprovalDesk``. The coder asks through ``ToolContext.approve`` (set by the session
when approval is on for a run): the desk notes the cell as waiting, emits its ``ApprovalRequested`` and
waits for the ``ApprovalReply`` a front end hands to ``AgentSession.approve``. Replies may come from
another thread (the magic answers on the kernel's main thread while the run is on the private loop),
so the desk settles the waiting future on the loop that waits for it.

A stop while waiting cancels the wait like any other await of the run. No reply within the timeout
is an ``ApprovalTimeout``: the cell does not run and the run stops with an error, rather than treating
silence as a skip (an unattended run would otherwise go on generating cells nobody looks at).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

from ..events import ApprovalRequested, Event
from ..exceptions import ApprovalTimeout, NotWaitingForApproval
from ..run_requests import ApprovalReply


def _settle(future: asyncio.Future[ApprovalReply], reply: ApprovalReply) -> None:
    if not future.done():  # the wait may have timed out or been cancelled in the meantime
        future.set_result(reply)


class ApprovalDesk:
    """The cells of one session waiting for an approval, by (run id, cell id)."""

    def __init__(self) -> None:
        self._waiting: dict[tuple[str, str], tuple[asyncio.AbstractEventLoop, asyncio.Future[ApprovalReply]]] = {}
        self._lock = threading.Lock()

    def waiting(self) -> list[tuple[str, str]]:
        """(run id, cell id) of every cell waiting now."""
        with self._lock:
            return list(self._waiting)

    async def ask(self, request: ApprovalRequested, *, emit: Callable[[Event], None], timeout: float) -> ApprovalReply:
        """Emit ``request`` and wait for its reply; ``timeout`` 0 waits until the run is cancelled."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[ApprovalReply] = loop.create_future()
        key = (request.run_id, request.cell_id)
        with self._lock:  # noted before the event goes out, so the quickest reply finds it
            self._waiting[key] = (loop, future)
        try:
            emit(request)
            if timeout > 0:
                return await asyncio.wait_for(future, timeout)
            return await future
        except asyncio.TimeoutError:  # not the builtin TimeoutError before Python 3.11
            raise ApprovalTimeout(request.attempt, timeout) from None
        finally:
            with self._lock:
                self._waiting.pop(key, None)

    def reply(self, reply: ApprovalReply) -> None:
        """Hand ``reply`` to the cell waiting for it (from any thread); a cell takes one reply only."""
        key = (reply.run_id, reply.cell_id)
        with self._lock:
            entry = self._waiting.pop(key, None)
            waiting = [cell for run, cell in self._waiting if run == reply.run_id]
        if entry is None:
            hint = f" (it waits for cell {waiting[0]!r})" if waiting else ""
            raise NotWaitingForApproval(
                f"Run {reply.run_id!r} is not waiting for an approval of cell {reply.cell_id!r}{hint}; answer the "
                f"run_id and cell_id of an approval_requested event that has not been answered yet."
            )
        loop, future = entry
        loop.call_soon_threadsafe(_settle, future, reply)
