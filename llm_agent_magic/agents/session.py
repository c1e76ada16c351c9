"""``AgentSession``: one conversation, its sandbox and its store, and the one entry point ``run``.

Front ends (the magic, the side panel, the batch runner) start runs through their ``SessionManager``'s
``runs`` and render the events; nothing else crosses the boundary.

A run is a ``live_run.LiveRun`` (``live``: the run the session is running, or ran last): its events are numbered
there and stored with their number. A run holds the session's run lock (``sandbox/hold.py``) from just after
``RunStarted`` to its end, so runs of other processes and front ends on the same session never interleave in
its sandbox kernel; a run that has to wait says whom it waits for (a ``Waiting`` event) and gives up after
``SandboxConfig.session_wait_timeout`` with ``SessionBusy``. What else executes in the kernel outside a
run (variables, pull, push, reset, the kernel's shutdown) holds the lock too (``using_sandbox``).

The sandbox kernel starts at the first execution, not when the session opens: a run that executes no
code starts none (``SessionManager`` decides how long kernels live: ``kernels.py``). ``last_used`` says
when the session was last used, on its ``clock``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import logging
import os
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from typing import Any

from traitlets.config import Config

from .. import volatile
from ..config import AgentConfig, LLMConfig, PathsConfig, SandboxConfig, ToolsConfig
from ..events import (
    Answer,
    ApprovalRequested,
    CellOutput,
    Classified,
    Error,
    Event,
    RunFinished,
    RunStarted,
    Token,
    Waiting,
    events_from_store,
)
from ..exceptions import LLMAgentError, SessionBusy, SessionNotFound
from ..llm import LLMClient
from ..prompts import Transcript, render_prompt
from ..run_requests import ApprovalReply, RunRequest
from ..sandbox import SandboxKernel
from ..sandbox.hold import Holder, RunLock
from ..sandbox.results import ExecutionResult
from ..store import ConversationStore
from ..tools.base import ToolContext, ToolRegistry
from ..tools.file_analyzer import FileAnalyzerTool
from ..tools.files import attach, attach_limit, describe_file
from ..tools.python_coder import PythonCoderTool
from ..tools.rag import RagSearchTool
from ..tools.web_search import WebSearchTool
from .answers import request_key
from .approval import ApprovalDesk
from .chat import run_chat
from .classifier import classify, clear_mode
from .context import GatheredContext, mentioned_files, named_files
from .context import gather as gather_context
from .fix import fix_proposal
from .live_run import LiveRun, follow_to_end
from .plan_execute import run_plan_execute
from .react import run_react

_log = logging.getLogger(__name__)
#: Events not kept in the store: the ``Answer`` event holds the whole streamed text.
NOT_STORED = (Token,)
#: Tokens are not stored one by one; what streamed is stored as an ``answer_part`` (the text since the last
#: part) at most this often, so that a front end of another process (the side panel beside a ``%%agent`` cell)
#: can show the answer as it streams. The ``answer`` event, at the end, supersedes the parts.
ANSWER_PART_SECONDS = 0.3


def answer_part_end(text: str, *, final: bool) -> int:
    """How much of the streamed ``text`` to store as a part now: all of it once the tokens ended (``final``),
    else up to its last whitespace, so that a word (a secret) is never cut in two parts and the store's
    redaction sees it whole."""
    if final:
        return len(text)
    return max(text.rfind(" "), text.rfind("\n"), text.rfind("\t")) + 1


class AnswerParts:
    """The streamed text not stored yet, and where each of its tokens ends, to cut it into numbered parts."""

    def __init__(self) -> None:
        self.text = ""
        self._ends: list[tuple[int, int]] = []  # (where the token ends in ``text``, its seq)

    def add(self, text: str, seq: int) -> None:
        self.text += text
        self._ends.append((len(self.text), seq))

    def take(self, *, final: bool) -> tuple[str, int] | None:
        """The next part and its seq: that of the last token it holds whole, so that a reader of the store that has
        the parts up to seq N has the text of the tokens up to N (and perhaps a little of the next). None when no
        token would end in it: the text waits for the next part."""
        cut = answer_part_end(self.text, final=final)
        whole = [seq for end, seq in self._ends if end <= cut]
        if not cut or not whole:
            return None
        part, self.text = self.text[:cut], self.text[cut:]
        self._ends = [(end - cut, seq) for end, seq in self._ends if end > cut]
        return part, whole[-1]


def default_tools(config: Config | None = None) -> ToolRegistry:
    """The tools of a session, always the same four; each run offers the model those that can work in it
    (``Tool.offered``: web_search with a Tavily key or a replayed cassette, rag_search with something to
    search besides tables)."""
    tools_config = ToolsConfig(config=config) if config is not None else ToolsConfig()
    paths = PathsConfig(config=config) if config is not None else None
    return ToolRegistry(
        [
            PythonCoderTool(),
            RagSearchTool(tools_config, paths=paths),
            FileAnalyzerTool(tools_config),
            WebSearchTool(tools_config),
        ]
    )


def last_attempt_failure(output: CellOutput) -> Error | None:
    """The ``Error`` a run ends with when its last code attempt failed (kind: the exception's name), else None."""
    if not output.failed:
        return None
    error = next((o for o in reversed(output.outputs) if o.get("output_type") == "error"), None)
    if error is not None:
        kind, detail = str(error.get("ename", "")) or "Error", str(error.get("evalue", ""))
    elif output.status == "ok":
        kind, detail = "InadequateOutput", "its output did not answer the task"
    else:
        kind, detail = {"timeout": "Timeout", "died": "SandboxDied"}.get(output.status, "Error"), output.status
    first_line = detail.strip().splitlines()[0][:200] if detail.strip() else kind
    return Error(
        kind, f"{first_line} (in the last generated cell: the answer may rest on code that did not work)", recoverable=False
    )


def fetched(ctx: ToolContext, described: list[str]) -> None:
    """Files of the notebook's folder copied in during a run: described to the model before its next call, as
    attached files are in its request (path, size, a table's columns and first rows)."""
    ctx.files.extend(described)
    ctx.conversation.add(render_prompt("fetched", files=described))


def _within(files: list[str], folder: str, gathered: GatheredContext | None) -> list[str]:
    """The attached ``files`` (absolute, or relative to ``folder``) as paths relative to the gathered folder, as its
    listing names them: already in the workspace, so never fetched again nor described twice."""
    if gathered is None:
        return []
    base = os.path.abspath(gathered.folder)
    found = []
    for name in files:
        path = os.path.abspath(os.path.join(folder or base, name))
        if os.path.commonpath([base, path]) == base:
            found.append(os.path.relpath(path, base).replace(os.sep, "/"))
    return found


def _once_stored(live: LiveRun, writes: list[asyncio.Future[Any]]) -> asyncio.Future[list[Any]]:
    """The run's writes gathered; the run is over (``LiveRun.finish``) once they are, even if whoever waits for
    them is cancelled meanwhile."""
    gathered = asyncio.gather(*writes, return_exceptions=True)
    gathered.add_done_callback(lambda _: live.finish())
    return gathered


class AgentSession:
    """A session: id, conversation (SQLite), sandbox kernel, tools. Whoever opens it closes it."""

    def __init__(
        self,
        session_id: str,
        *,
        llm: LLMClient,
        store: ConversationStore,
        sandbox: SandboxKernel | None,
        agent_config: AgentConfig | None = None,
        tools: ToolRegistry | None = None,
        owns: bool = False,
        front_end: str = "",
    ):
        self.session_id = session_id
        #: Who opened it ("magic", "panel", "batch", ...): named to runs that wait for this session's lock.
        self.front_end = front_end
        self.run_lock = RunLock(sandbox.paths) if sandbox is not None else None
        if os.sep in session_id:  # a notebook's path: moves with the folder
            volatile.register(session_id, volatile.PATH)
        self.llm = llm
        self.store = store
        self.sandbox = sandbox
        self.config = agent_config or AgentConfig()
        self.tools = tools or default_tools()
        self._owns = owns
        #: The run it is running, or ran last (``live_run.LiveRun``).
        self.live: LiveRun | None = None
        self._approvals = ApprovalDesk()
        #: When the session was last used (a run, a push, a reset, opening it), on ``clock``.
        self.clock: Callable[[], float] = time.monotonic
        self.last_used = self.clock()
        #: One thread writes the store (events, messages) in order, so the event loop never waits on SQLite.
        self._writer = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="llm-agent-store")
        store.ensure_session(session_id)

    @classmethod
    def open(
        cls,
        session_id: str | None = None,
        *,
        config: Config | None = None,
        tools: ToolRegistry | None = None,
        front_end: str = "",
        before_start: Callable[[SandboxKernel], Awaitable[None]] | None = None,
    ) -> AgentSession:
        """Build a session from configuration; its sandbox kernel starts when code first runs.

        ``before_start`` is handed to the sandbox (``SandboxKernel.before_start``)."""
        config = config or Config()
        llm_config = LLMConfig(config=config)
        paths = PathsConfig(config=config)
        agent_config = AgentConfig(config=config)
        session_id = session_id or uuid.uuid4().hex[:12]
        sandbox = SandboxKernel(
            session_id,
            config=SandboxConfig(config=config),
            paths=paths,
            max_output_chars=agent_config.max_output_chars,
            before_start=before_start,
        )
        return cls(
            session_id,
            llm=LLMClient(llm_config, paths=paths),
            store=ConversationStore.from_config(paths),
            sandbox=sandbox,
            agent_config=agent_config,
            tools=tools or default_tools(config),
            owns=True,
            front_end=front_end,
        )

    async def start(self) -> None:
        """Begin launching the sandbox kernel now (a warm-up: otherwise it starts at the first execution)."""
        if self.sandbox is not None:
            await self.sandbox.async_start()

    def touch(self) -> None:
        """The session is being used now (see ``last_used``)."""
        self.last_used = self.clock()

    @property
    def running(self) -> bool:
        """A run is going (until its ``RunFinished``: what it still writes to the store is queued by then, in
        order on the session's writer thread, so the next run need not wait for the disk)."""
        return self.live is not None and self.live.running

    def _refuse_if_running(self) -> None:
        """``SessionBusy`` naming the run this session is running, if any."""
        if self.live is not None and self.live.running:
            raise SessionBusy(self.session_id, run_id=self.live.run_id)

    @property
    def _task(self) -> asyncio.Task[None] | None:
        """The current (or last) run's task."""
        return self.live.task if self.live is not None else None

    def cancel(self, run_id: str = "") -> bool:
        """Stop the current run (only if it is ``run_id``, when given): the model stream closes, the sandbox is
        interrupted, the run ends 'cancelled'. False when there is no such run going."""
        live = self.live
        if live is None or (run_id and live.run_id != run_id):
            return False
        return live.stop()

    def approve(self, reply: ApprovalReply) -> None:
        """Hand the user's Run / Edit / Skip to the cell waiting for it; safe to call from any thread.

        ``NotWaitingForApproval`` (saying what is waiting) when no cell of that run and id waits now.
        """
        self._approvals.reply(reply)

    @property
    def waiting_for_approval(self) -> list[tuple[str, str]]:
        """(run id, cell id) of the cells waiting for an approval now."""
        return self._approvals.waiting()

    def wait_timeout(self, wait: float | None = None) -> float:
        """Seconds to wait for the session's run lock: ``wait``, else ``SandboxConfig.session_wait_timeout``."""
        if wait is not None:
            return wait
        return float(self.sandbox.config.session_wait_timeout) if self.sandbox is not None else 0.0

    @contextlib.asynccontextmanager
    async def using_sandbox(
        self, task: str, *, wait: float | None = None, front_end: str = "", on_wait: Callable[[Holder | None], None] | None = None
    ) -> AsyncIterator[None]:
        """Hold the session's run lock while doing ``task`` ("a variable listing") in its sandbox outside a run.

        Waits up to ``wait_timeout(wait)`` seconds for a run that holds it, then raises ``SessionBusy``.
        """
        if self.run_lock is None:
            yield
            return
        async with self.run_lock.hold(front_end or self.front_end, self.wait_timeout(wait), task=task, on_wait=on_wait):
            yield

    async def reset(self, *, restart_sandbox: bool = True) -> None:
        """A new conversation and a fresh sandbox: stored messages and runs, snapshots and variables go.

        A kernel that is running (this object's, or another process's for this session) is restarted empty;
        otherwise none is started: the next execution starts one, with nothing to restore.
        ``restart_sandbox=False`` is for a sandbox this object has not started yet.
        """
        self._refuse_if_running()
        self.touch()
        async with self.using_sandbox("a reset"):  # never wipes what a run of another process is using
            with contextlib.suppress(SessionNotFound):
                self.store.delete_session(self.session_id)
            self.store.ensure_session(self.session_id)
            if self.sandbox is None:
                return
            if restart_sandbox and self.sandbox.started:
                await self.sandbox.async_restart(restore=False)
            elif self.sandbox.kernel_running():  # another process's kernel: it still has the old variables
                self.sandbox.forget_snapshots()  # before this object attaches: nothing to restore
                await self.sandbox.async_restart(restore=False)
            self.sandbox.forget_snapshots()

    async def execute_cell(self, source: str, *, front_end: str = "", wait: float | None = None) -> ExecutionResult:
        """Run a cell's code in the session's sandbox kernel, as the agent's code runs; the model is not asked.

        What ``%%sandbox`` cells (generated cells run again, or the user's own) do: the same kernel, output
        cleaning and bounds, execution limits and variable snapshots as a run's executions, under the session's
        run lock (``SessionBusy`` past ``wait`` seconds). The result says whether the code failed; it does not raise
        for that (the front end decides).
        """
        if self.sandbox is None:
            raise LLMAgentError(f"Session {self.session_id!r} has no sandbox to run the cell in.")
        self._refuse_if_running()
        async with self.using_sandbox("a %%sandbox cell", wait=wait, front_end=front_end):
            return await self.sandbox.async_execute(source)

    async def close(self) -> None:
        if self.cancel() and self.live is not None:
            await self.live.stored()  # its last events and the run's status reach the store first
        self._writer.shutdown(wait=True)
        if self._owns:
            await self.llm.aclose()
            if self.sandbox is not None:
                await self._close_sandbox(self.sandbox)
            self.store.close()

    async def _close_sandbox(self, sandbox: SandboxKernel) -> None:
        """Shut the sandbox down once no run of another process is in its kernel.

        The process that launched the kernel waits for such a run (up to the session's wait timeout) before
        stopping it; past that, or when this process only attached, it leaves the kernel to that run (the
        next process that closes the session while attached stops it: ``SandboxKernel.async_shutdown``).
        A sandbox that never started has no kernel to wait for.
        """
        if not sandbox.started:
            await sandbox.async_shutdown()
            return
        try:
            async with self.using_sandbox("a shutdown", wait=None if sandbox.owns_kernel else 0.0):
                await sandbox.async_shutdown()
        except SessionBusy:
            await sandbox.async_shutdown(leave_running=True)

    async def __aenter__(self) -> AgentSession:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    # --- the entry point ------------------------------------------------------------------
    async def run(
        self,
        request: RunRequest | str,
        *,
        mode: str = "auto",
        files: list[str] | tuple[str, ...] = (),
        dry_run: bool = False,
    ) -> AsyncIterator[Event]:
        """Answer ``request``, yielding events until (and including) ``RunFinished``; stopping to listen stops the run.

        ``request`` is a ``RunRequest`` (what front ends send), or the text of one with ``mode``, ``files``
        and ``dry_run`` (write the code the agent would run first, reviewed with ``review_before_run``; show it, run nothing).
        Front ends start runs through their ``SessionManager``'s ``runs`` (``runs.RunRegistry``), which calls ``start_run``.
        """
        if not isinstance(request, RunRequest):
            request = RunRequest(request, mode=mode, files=list(files), dry_run=dry_run)
        async with contextlib.aclosing(follow_to_end(self.start_run(request))) as events:  # closed with this one
            async for event in events:
                yield event

    def start_run(self, request: RunRequest) -> LiveRun:
        """Start answering ``request`` on the running loop; returns the run, its ``RunStarted`` already in it.

        ``SessionBusy`` while another run of this session is going. The run goes on whoever follows it (or nobody);
        its events are numbered and stored as they are emitted (``LiveRun.add``), its end is ``LiveRun.stored``.
        """
        self._refuse_if_running()
        mode = request.resolved_mode
        run_id = uuid.uuid4().hex
        live = self.live = LiveRun(self.session_id, run_id)
        loop = asyncio.get_running_loop()
        # The run is recorded by the writer thread, ahead of its events: its first event never waits on SQLite.
        recorded = loop.run_in_executor(
            self._writer,
            functools.partial(
                self.store.start_run, self.session_id, request.request, None if mode == "auto" else mode, run_id=run_id
            ),
        )
        writes: list[asyncio.Future[Any]] = [recorded]
        parts, stored_at = AnswerParts(), 0.0  # the answer's text not stored yet, and when a part last was

        def store(data: dict[str, Any]) -> None:  # written in order by one thread: the loop never waits on disk
            writes.append(loop.run_in_executor(self._writer, self.store.append_event, run_id, data))

        def emit(event: Event) -> None:
            nonlocal stored_at
            event.run_id = run_id
            data = live.add(event)  # numbered here, once: the number it is stored with is the one clients see
            token = isinstance(event, NOT_STORED)
            if isinstance(event, Token):
                parts.add(event.text, event.seq)
            now = time.monotonic()
            if parts.text and (not token or now - stored_at >= ANSWER_PART_SECONDS):
                part = parts.take(final=not token)
                if part is not None:
                    store({"type": "answer_part", "text": part[0], "run_id": run_id, "seq": part[1]})
                    stored_at = now
            if not token:
                store(data)

        self.touch()
        # Emitted here, not in the task: the first event is ready when the caller first asks, without waiting
        # for the loop to start the task (on a busy server each wait is a turn behind every other run).
        emit(
            RunStarted(
                request.request,
                mode_requested=request.mode,
                session_id=self.session_id,
                request_key=request_key(request, self.llm.config.model),
            )
        )
        task = live.task = asyncio.create_task(self._drive(live, request, emit, writes, recorded))
        # A task cancelled before its first step (the loop closing) never runs its body: the run still ends.
        task.add_done_callback(lambda _: None if live.began else _once_stored(live, writes))
        return live

    async def stored_answer(self, request: RunRequest, *, any_session: bool = False) -> list[Event] | None:
        """The events of the latest run that answered this same request (``answers.request_key``) and ended "ok",
        or None; the model is not asked. Its attached files are copied into the workspace again, as a run would,
        so the generated cells that re-run after it find them.

        Runs of this session come first; ``any_session``: then any session's in the store (a front end that
        cannot tell which notebook this is: plain nbclient, ``jupyter nbconvert --execute``). A session that
        replays a cassette answers from it instead.
        """
        key = request_key(request, self.llm.config.model)
        if not key or request.dry_run or self.llm.config.cassette_mode == "replay":
            return None  # a cassette being replayed is the record: its answers come back as recorded

        def find(store: ConversationStore) -> list[dict[str, Any]] | None:
            for scope in [self.session_id, None] if any_session else [self.session_id]:
                for run in store.answered_runs(request.request, scope):
                    events = store.run_events(run.id)
                    if events and events[0].get("request_key") == key:
                        return events
            return None

        found = await self._store(find, self.store)  # on the writer thread: behind this session's last writes
        if found is None:
            return None
        if request.files:
            async with self.using_sandbox("attaching files"):  # as a run attaches them: under the run lock
                self._attach(request.files, request.folder)
        return events_from_store(found)

    async def _store(self, method: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._writer, lambda: method(*args, **kwargs))

    async def _lock_for_run(self, request: RunRequest, emit: Callable[[Event], None]) -> bool:
        """Take the session's run lock for this run, saying whom it waits for while it waits."""
        if self.run_lock is None:
            return False
        timeout = self.wait_timeout()

        def waiting(holder: Holder | None) -> None:
            if holder is None:
                emit(Waiting("another run (it has not said who it is)", timeout=timeout))
            else:
                emit(Waiting(holder.describe(), front_end=holder.front_end, pid=holder.pid, since=holder.since, timeout=timeout))

        await self.run_lock.acquire(request.origin or self.front_end, timeout, on_wait=waiting)
        return True

    async def _drive(  # noqa: C901  # one run from its start to its stored end, every way it can end handled where it is seen
        self,
        live: LiveRun,
        request: RunRequest,
        emit: Callable[[Event], None],
        writes: list[asyncio.Future[Any]],
        recorded: Awaitable[Any],
    ) -> None:
        live.began = True  # from here a stop cancels this task, and lands in the try below
        run_id = live.run_id
        started = time.monotonic()
        status = "ok"
        text, mode = request.request, request.resolved_mode
        locked = False
        try:
            if live.stop_asked:  # stopped before it began
                raise asyncio.CancelledError
            await recorded  # e.g. SessionNotFound: the session was deleted meanwhile
            locked = await self._lock_for_run(request, emit)
            history = [
                {"role": m.role, "content": m.content}
                for m in await self._store(self.store.recent_messages, self.session_id, self.config.history_messages)
            ]
            await self._store(self.store.add_message, self.session_id, "user", text, run_id=run_id)
            attached = await asyncio.to_thread(self._attach, request.files, request.folder)  # reads small tables whole
            gathered = await asyncio.to_thread(  # lists a folder: off the loop
                gather_context,
                request.context,
                request.context_folder or request.folder,
                self.config.context,
                self.llm.config.num_ctx,
            )
            if gathered is not None:
                emit(replace(gathered.event, run_id=run_id))
            mentioned = mentioned_files(text, gathered.files) if gathered is not None and self.sandbox else []
            if gathered is not None and mentioned:  # "@sales.csv": attached at once, described like an attachment
                try:
                    attached += await asyncio.to_thread(
                        self._attach, [os.path.join(gathered.folder, rel) for rel in mentioned], gathered.folder
                    )
                except (FileNotFoundError, LLMAgentError) as exc:  # gone or refused meanwhile: named, not attached
                    _log.info("a file the request mentions was not copied: %s", exc)
                    mentioned = []
            last_output: list[CellOutput] = []

            def tracked(event: Event) -> None:
                if isinstance(event, CellOutput):  # a skipped cell too: the user chose not to run it
                    last_output[:] = [event]
                emit(event)

            ctx = ToolContext(
                llm=self.llm,
                config=self.config,
                emit=tracked,
                request=text,
                run_id=run_id,
                history=history,
                files=attached,
                sandbox=self.sandbox,
                model=request.model,
                approve=self._approver(request, emit),
                fetch_named=self._fetcher(
                    gathered,
                    [*_within(request.files, request.folder, gathered), *mentioned],
                    lambda described: fetched(ctx, described),
                ),
            )
            tools = self.tools.offered(ctx)  # a tool that cannot work here is not offered (no key, no documents)
            ctx.transcript = Transcript(
                render_prompt("system", tools=tools.describe()),
                history,
                render_prompt("request", request=text, files=attached, context=gathered.text if gathered else ""),
                num_ctx=self.llm.config.num_ctx,
            )
            if mode == "auto":
                classified = clear_mode(text, request.files) or await classify(ctx)
            else:
                classified = Classified(mode, "chosen by the user")
            emit(classified)
            if classified.mode == "chat":
                answer = await run_chat(ctx)
            elif request.dry_run:
                answer = await self._dry_run(ctx)
            elif classified.mode == "plan_execute":
                answer = await run_plan_execute(ctx, tools)
            else:
                answer = await run_react(ctx, tools)
            await self._store(self.store.add_message, self.session_id, "assistant", answer, mode=classified.mode, run_id=run_id)
            if request.fix_of:  # the corrected cell, for the front end to show as a diff and apply if accepted
                emit(fix_proposal(request.fix_of, answer))
            failure = last_attempt_failure(last_output[0]) if last_output else None
            if failure is not None:  # the answer is there, but the code it rests on did not work: a failed run
                status = "error"
                emit(failure)
        except asyncio.CancelledError:
            status = "cancelled"
            if locked:  # otherwise the sandbox is busy with another run, not ours
                await self._interrupt_sandbox()
        except LLMAgentError as exc:
            status = "error"
            emit(Error(type(exc).__name__, str(exc), recoverable=bool(getattr(exc, "recoverable", False))))
        except FileNotFoundError as exc:
            status = "error"
            emit(Error("FileNotFoundError", str(exc), recoverable=True))
        except Exception as exc:  # noqa: BLE001  # a bug: say so plainly, keep the session usable
            _log.exception("agent run %s failed", run_id)
            status = "error"
            emit(Error("internal", f"The agent hit an internal error: {exc!r}. The session is still usable.", False))
        finally:
            if locked and self.run_lock is not None:
                self.run_lock.release()
            emit(RunFinished(status, duration=time.monotonic() - started))
            # Queued now, behind the run's events, on the one writer thread: a cancellation from here on cannot
            # keep the run's status from the store.
            writes.append(asyncio.get_running_loop().run_in_executor(self._writer, self.store.finish_run, run_id, status))
            self.touch()
            for failed in await asyncio.shield(_once_stored(live, writes)):
                if isinstance(failed, BaseException):
                    _log.error("run %s: an event could not be stored: %r", run_id, failed)

    def _approver(
        self, request: RunRequest, emit: Callable[[Event], None]
    ) -> Callable[[ApprovalRequested], Awaitable[ApprovalReply]] | None:
        """How the run's cells wait for the user, or None when they run without asking (a dry run runs nothing)."""
        wanted = self.config.approval if request.approval is None else request.approval
        if not wanted or request.dry_run:
            return None
        return functools.partial(self._approvals.ask, emit=emit, timeout=self.config.approval_timeout)

    async def _dry_run(self, ctx: ToolContext) -> str:
        coder = self.tools.get("python_coder")
        if not isinstance(coder, PythonCoderTool):
            raise LLMAgentError("A dry run needs the python_coder tool.")
        await coder.draft(ctx.request, ctx)
        answer = "Dry run: above is the code the agent would run first. Nothing was executed."
        ctx.emit(Answer(answer, run_id=ctx.run_id))
        return answer

    def _fetcher(
        self,
        gathered: GatheredContext | None,
        copied_already: list[str],
        announce: Callable[[list[str]], None],
    ) -> Callable[[str], Awaitable[list[str]]] | None:
        """Copies the folder's files a text names into the workspace (once each), as attachments are copied, and
        ``announce``s their descriptions, so the model hears of them as of an attached file."""
        if gathered is None or not gathered.files or self.sandbox is None:
            return None
        present = set(copied_already)

        async def fetch(text: str) -> list[str]:
            wanted = named_files(text, gathered.files, present)
            if not wanted:
                return []
            paths = [os.path.join(gathered.folder, rel) for rel in wanted]
            try:
                copied = await asyncio.to_thread(self._attach, paths, gathered.folder)
            except (FileNotFoundError, LLMAgentError) as exc:  # gone or refused meanwhile: the code will say so
                _log.info("a file the model named was not copied: %s", exc)
                return []
            present.update(wanted)
            if copied:
                announce(copied)
            return copied

        return fetch

    def _attach(self, files: list[str], folder: str) -> list[str]:
        if not files:
            return []
        if self.sandbox is None:
            raise LLMAgentError("Files can only be attached to a session with a sandbox.")
        workspace = self.sandbox.workspace
        limit = attach_limit(self.sandbox.config.workspace_quota_mb)
        return [describe_file(workspace, rel) for rel in attach(files, workspace, folder, limit)]

    async def _interrupt_sandbox(self) -> None:
        if self.sandbox is None:
            return
        with contextlib.suppress(Exception):
            await asyncio.shield(self.sandbox.async_interrupt())
