"""One ``%%agent`` run as the user sees it: events from the agent loop, rendered in place.

The run's coroutine lives on the private loop (``AgentLoop``); its events cross to the main
thread through a thread-safe queue, and the main thread updates ONE output area (a display
handle). A kernel interrupt (the notebook's stop button) cancels the run cleanly: the agent
stops, the sandbox is interrupted, the output says "stopped" and the kernel stays usable.

The run is started, stopped and answered through the session service's runs (``SessionManager.runs``), as every
front end's are. With approval on, a cell's ``ApprovalRequested`` is answered here, on the main thread, through
``approve.ask_approval`` (the kernel's input request); the reply goes to the run, which waits for it on the loop.
An interrupt while the question is open stops the run like any other.

When the run is over the live area gives way to the final outputs (``clear_output(wait=True)``,
then the answer and the generated cells as new outputs). The live area opens with an empty
data bundle: a reader that ignores display updates and clears (nbval) then records exactly
the final outputs a notebook saved by nbclient or JupyterLab holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..agents.runs import RunRegistry
from ..cells import make_bundle
from ..events import ApprovalRequested, Error, Event, RunFinished, Token
from ..exceptions import NotWaitingForApproval, RunNotRunning
from ..run_requests import ApprovalReply, RunRequest
from ..run_summary import RunSummary
from .approve import Ask, ask_approval
from .loop import AgentLoop
from .render import LiveView, answer_data, bundle_data

#: Streamed tokens redraw the output at most this often (the first one at once).
THROTTLE_SECONDS = 0.05
#: After an interrupt, how long the agent gets to wind down before its task is cancelled outright.
STOP_GRACE_SECONDS = 30.0
_END = object()


@dataclass
class _Failed:
    exc: BaseException


Display = Callable[..., Any]


class RunStream:
    """Drives one run of session ``session_id`` (through ``runs``) from the main thread; ``events`` holds everything
    it yielded."""

    def __init__(
        self,
        loop: AgentLoop,
        runs: RunRegistry,
        session_id: str,
        *,
        quiet: bool = False,
        dry_run: bool = False,
        display: Display | None = None,
        clear: Callable[..., Any] | None = None,
        ask: Ask | None = None,
    ) -> None:
        self.loop = loop
        self._ask = ask or _input
        self.runs = runs
        self.session_id = session_id
        self.run_id = ""
        self.quiet = quiet
        self.dry_run = dry_run
        self.events: list[Event] = []
        self.view = LiveView(dry_run=dry_run)
        self._display = display or _ipython_display
        self._clear = clear or _ipython_clear
        self._items: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._task: asyncio.Task[None] | None = None
        self._interrupts = 0
        self._interrupted_at = 0.0
        self._handle: Any = None
        self._last_draw = 0.0
        self._dirty = False
        self._drawn: dict[str, Any] | None = None

    # --- the loop side ---------------------------------------------------------------------------------

    async def _pump(self, request: RunRequest) -> None:
        self._task = asyncio.current_task()
        try:
            async for event in self.runs.run(self.session_id, request):
                self.run_id = event.run_id
                self._items.put(event)
        except asyncio.CancelledError:
            pass
        except BaseException as exc:  # noqa: BLE001  # reported in the output, not as a traceback
            self._items.put(_Failed(exc))
        finally:
            self._items.put(_END)

    def _cancel(self) -> None:  # on the loop thread
        if self.run_id:
            with contextlib.suppress(RunNotRunning):
                self.runs.stop(self.session_id, self.run_id)
                return
        if self._task is not None:
            self._task.cancel()  # the run had not started yet, or it is only storing its last events

    def _reply(self, reply: ApprovalReply) -> None:  # on the loop thread
        with contextlib.suppress(NotWaitingForApproval):  # the run stopped waiting meanwhile (timed out, or stopped):
            self.runs.approve(self.session_id, reply)  # its own events say so

    def _force_stop(self) -> None:  # on the loop thread
        if self._task is not None:
            self._task.cancel()

    # --- the main-thread side --------------------------------------------------------------------------

    def _on_interrupt(self, *_: Any) -> None:
        self._interrupts += 1
        if self._interrupts == 1:
            self._interrupted_at = time.monotonic()
            self.view.stopping = True
            self._dirty = True
            self.loop.call_soon(self._cancel)
        else:
            self.loop.call_soon(self._force_stop)

    def run(self, request: RunRequest) -> list[Event]:
        """Run to the end (or until interrupted), rendering as it goes; returns the events."""
        if not self.quiet:
            self._handle = self._display({}, raw=True, display_id=True)
            self._draw()
        self.loop.submit(self._pump(request))
        previous = _install_sigint(self._on_interrupt)
        try:
            self._consume()
        finally:
            _restore_sigint(previous)
        if RunSummary.of(self.events).finished is None:
            self.events.append(RunFinished("cancelled" if self._interrupts else "error"))
        return self.events

    def _consume(self) -> None:
        while True:
            wait = 0.25
            if self._dirty:
                wait = max(0.0, self._last_draw + THROTTLE_SECONDS - time.monotonic())
            try:
                item = self._items.get(timeout=wait)
            except queue.Empty:
                item = None
            except KeyboardInterrupt:  # no handler could be installed (not the main thread)
                self._on_interrupt()
                continue
            if item is _END:
                return
            if isinstance(item, _Failed):
                exc = item.exc
                self._add(Error(type(exc).__name__, str(exc) or repr(exc), recoverable=False))
                self._add(RunFinished("error"))
            elif item is not None:
                self._add(item)
            if self._dirty and time.monotonic() - self._last_draw >= THROTTLE_SECONDS:
                self._draw()
            if self._interrupts == 1 and time.monotonic() - self._interrupted_at > STOP_GRACE_SECONDS:
                self._on_interrupt()  # the agent did not wind down in time: cancel its task outright

    def _add(self, event: Event) -> None:
        self.events.append(event)
        self.view.apply(event)
        if not self.quiet:
            if isinstance(event, Token) and len(self.view.tokens) > 1:
                self._dirty = True  # drawn by the throttle
            else:
                self._draw()
        if isinstance(event, ApprovalRequested) and not self._interrupts:
            self._approve(event)

    def _approve(self, request: ApprovalRequested) -> None:
        """Ask the user (the code is in the live view, or in the question when quiet) and pass the reply on."""
        previous = _install_sigint(signal.default_int_handler)  # so an interrupt ends the open question
        try:
            reply = ask_approval(request, self._ask, show_code=self.quiet)
        except (KeyboardInterrupt, EOFError):  # EOF: the front end closed its input, nobody is there to answer
            self._on_interrupt()
            return
        finally:
            _restore_sigint(previous)
        self.loop.call_soon(self._reply, reply)

    def _draw(self) -> None:
        self._dirty = False
        data = self.view.display_data()
        if self._handle is None or data == self._drawn:
            return  # events that change nothing on screen (usage, observations) cost no message
        self._drawn = data
        self._last_draw = time.monotonic()
        self._handle.update(data, raw=True)

    def finish(self, *, session_id: str, model: str, include_failed: bool) -> dict[str, Any]:
        """Replace the live view with the answer and show the generated cells; returns the bundle."""
        if self._handle is not None:
            self._clear(wait=True)  # the live area goes when the answer arrives: no flicker
        self._display(answer_data(self.events, dry_run=self.dry_run), raw=True)
        bundle = make_bundle(self.events, session_id=session_id, model=model, include_failed=include_failed)
        self._display(bundle_data(self.events, bundle, include_failed, self.dry_run), raw=True)
        return bundle


def show_stored(
    events: list[Event], *, session_id: str, model: str, include_failed: bool, display: Display | None = None
) -> dict[str, Any]:
    """A stored run's final outputs, as ``RunStream.finish`` shows a run that just ended; returns the bundle."""
    show = display or _ipython_display
    show(answer_data(events), raw=True)
    bundle = make_bundle(events, session_id=session_id, model=model, include_failed=include_failed)
    show(bundle_data(events, bundle, include_failed), raw=True)
    return bundle


def _input(prompt: str) -> str:
    # Looked up at call time: ipykernel swaps builtins.input for its input request while a cell runs.
    import builtins

    return builtins.input(prompt)


def _ipython_display(data: dict[str, Any], **kwargs: Any) -> Any:
    from IPython.display import display

    return display(data, **kwargs)


def _ipython_clear(**kwargs: Any) -> None:
    from IPython.display import clear_output

    clear_output(**kwargs)


def _install_sigint(handler: Callable[..., Any]) -> Any:
    """Our handler for the run's duration, so an interrupt never lands as an exception mid-render."""
    if threading.current_thread() is not threading.main_thread():
        return None
    try:
        return signal.signal(signal.SIGINT, handler)
    except (ValueError, OSError):
        return None


def _restore_sigint(previous: Any) -> None:
    if previous is not None:
        signal.signal(signal.SIGINT, previous)
