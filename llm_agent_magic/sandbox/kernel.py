"""SandboxKernel: a sibling ipykernel per session that runs generated code, remembers variables
and survives failure.

Async first (``async_*`` methods); the blocking methods without the prefix are thin wrappers
for the magic. Every kernel operation runs on one private loop thread (see ``loop.SandboxLoop``).
This module is the public API; the work is done by its bases, one job each: ``lifecycle.py`` (start,
attach, readiness, recovery, shutdown; the launches themselves in ``launch.py``) and ``execution.py``
(one cell, within its limits).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from llm_agent_magic.config import PathsConfig, SandboxConfig
from llm_agent_magic.exceptions import SandboxError

from .execution import KernelExecution
from .inside import snapshots
from .inside.summaries import VariableSummary, parse_summaries
from .loop import run_sync
from .results import ExecutionResult
from .snapshot_files import forget_snapshots, load_snapshot
from .state import pid_alive, read_json


class SandboxKernel(KernelExecution):
    """The sandbox of one session: starts (or attaches to) its kernel and runs code in it.

    Any process attaches to the session's live kernel, whoever launched it; the session's run lock
    (``hold.py``, taken by the agent layer) keeps two runs out of it at once. Whoever launched the kernel
    shuts it down (``shutdown``); a SandboxKernel that attached to a kernel another live process launched
    only disconnects, and one attached to a kernel whose launcher is gone (it died, or left the kernel to
    a run of this process) shuts that orphan down. Another process's next execution then finds the
    kernel gone and starts a new one, restoring the variables from the snapshots.

    Nothing starts a kernel before it is needed: the first operation that needs one (an execution, the
    variables, a push, ``start``) launches or attaches to it. ``before_start`` (the session service's) is
    awaited first, on the caller's loop, each time this object is about to start a kernel (not when it
    replaces a dead one): it may stop another session's idle kernel to make room. ``stop`` ends the kernel
    and keeps the object usable: the next operation starts a new one, restoring the snapshots.
    """

    def __init__(
        self,
        session_id: str,
        *,
        config: SandboxConfig | None = None,
        paths: PathsConfig | None = None,
        max_output_chars: int = 8000,
        restore: bool = True,
        before_start: Callable[[SandboxKernel], Awaitable[None]] | None = None,
    ) -> None:
        super().__init__(session_id, config=config, paths=paths, restore=restore)
        self.before_start = before_start
        self.max_output_chars = max_output_chars

    # --- public API ---------------------------------------------------------------------------------

    @property
    def workspace(self) -> str:
        return str(self.paths.workspace)

    @property
    def snapshots_dir(self) -> str:
        return str(self.paths.snapshots)

    @property
    def pid(self) -> int | None:
        """Process id of the kernel (of bubblewrap around it at the ``full`` level)."""
        return self._pid

    @property
    def remote_info(self) -> dict[str, Any]:
        """What a gateway's kernel said when it was set up: its folders, Python, the variables it scrubbed."""
        return self.remote.info if self.remote is not None else {}

    @property
    def attached(self) -> bool:
        return self.kc is not None and not self.owns_kernel

    @property
    def started(self) -> bool:
        """This object has a kernel, or is starting one (launched or attached; not stopped, closed or failed)."""
        return self._ready is not None and not self._closed and self._start_error is None

    @property
    def gone(self) -> bool:
        """Closed, or its kernel failed to start: it holds no kernel and starts none by itself."""
        return self._closed or self._start_error is not None

    def kernel_running(self) -> bool:
        """Does a live kernel of this session exist, started by this object or by another process?"""
        if self.started:
            return True
        state = read_json(self.paths.state_file) or {}
        return (
            pid_alive(state.get("pid"), state.get("pid_start", ""))
            and self.paths.connection_file(str(state.get("launch_id", ""))).exists()
        )

    async def _admit(self) -> None:
        """Let the session service make room before this object starts a kernel (see the class docstring)."""
        if self.before_start is not None and self._ready is None and not self._closed:
            await self.before_start(self)

    async def async_start(self) -> None:
        """Launch the kernel (or attach to the session's live one) and return without waiting for it to be ready."""
        await self._admit()
        await self._loop.call(self._start())

    async def async_wait_ready(self) -> None:
        """Wait until the kernel answers (and variables from snapshots are restored)."""
        await self._admit()
        await self._loop.call(self._ensure_ready())

    async def async_execute(
        self, code: str, timeout: float | None = None, *, summary: bool = True, snapshot: bool = True
    ) -> ExecutionResult:
        """Run ``code``; never raises for errors in the code, timeouts or kernel death (see ``ExecutionResult``)."""
        await self._admit()
        return await self._loop.call(self._execute(code, timeout, summary, snapshot))

    async def async_interrupt(self) -> None:
        await self._loop.call(self._interrupt())

    async def async_restart(self, restore: bool = True) -> dict[str, Any]:
        """Replace the kernel with a fresh one; returns the restore report (``restored``, ``failed``)."""

        async def go() -> dict[str, Any]:
            await self._ensure_ready()
            assert self._exec_lock is not None
            async with self._exec_lock:
                return await self._recover(kill=True, restore=restore)

        await self._admit()
        return await self._loop.call(go())

    async def async_restore(self) -> dict[str, Any]:
        """Load every snapshot of the session into the kernel; returns ``{"restored": [...], "failed": {...}}``."""

        async def go() -> dict[str, Any]:
            await self._ensure_ready()
            return await self._restore()

        await self._admit()
        return await self._loop.call(go())

    async def async_variables(self) -> list[VariableSummary]:
        """Summaries of the kernel's variables, without running user code."""

        async def go() -> list[VariableSummary]:
            await self._ensure_ready()
            data = await self._helper(self._summary_call())
            return parse_summaries((data or {}).get("summary"))[0]

        await self._admit()
        return await self._loop.call(go())

    async def async_known_variables(self) -> list[VariableSummary]:
        """The variables code would see: with no kernel running anywhere and no snapshot to restore, none, and
        no kernel is started for that; otherwise the kernel's (started, restoring the snapshots, if need be)."""
        if not self.kernel_running():
            if not self.restore_on_start:
                return []
            catalog = await asyncio.to_thread(snapshots.read_catalog, self.paths.snapshots, set_aside=False)
            if not catalog["variables"]:
                return []
        return await self.async_variables()

    async def async_live_variables(self) -> list[VariableSummary] | None:
        """The live kernel's variables, once its pending snapshots are written; None, starting nothing, when
        this object has no kernel (the snapshots' catalog then says what the session holds)."""

        async def go() -> list[VariableSummary] | None:
            if not self.started:
                return None
            await self._ensure_ready()
            data = await self._helper(self._summary_call())
            await self._flush(60.0)
            return parse_summaries((data or {}).get("summary"))[0]

        return await self._loop.call(go())

    async def async_push(self, name: str, dataframe: Any) -> None:
        """Put a pandas DataFrame into the sandbox as variable ``name`` (and snapshot it)."""
        if not name.isidentifier():
            raise ValueError(f"{name!r} is not a valid Python variable name")
        # run/ is the sandbox's own HOME: a link planted there must not redirect the write.
        relpath = f"pushed/{name}.parquet"
        await asyncio.to_thread(snapshots.write_parquet, dataframe, self.paths.run, relpath)
        path = self.paths.run / relpath

        async def go() -> None:
            await self._ensure_ready()
            where = str(path)
            if self.remote is not None:  # no shared disk: the file goes over the kernel protocol
                await self.remote.send("pushed", path.parent, path.name)
                path.unlink(missing_ok=True)
                where = f"{self.remote_info['folders']['pushed']}/{path.name}"
            data = await self._helper(f"load_pushed({name!r}, {where!r})")
            if data is None:
                raise SandboxError(f"The sandbox did not load the pushed DataFrame {name!r}; try again.")

        await self._admit()
        await self._loop.call(go())

    async def async_flush_snapshots(self, timeout: float = 60.0) -> bool:
        """Wait until the kernel has written every snapshot it started (DataFrames are written in the background)."""
        return await self._loop.call(self._flush(timeout))

    def load(self, name: str) -> Any:
        """Read variable ``name`` from the session's snapshots into this process (after pending snapshots)."""
        self.flush_snapshots()
        return load_snapshot(self.paths, name, self.config)

    def forget_snapshots(self) -> None:
        """Delete the session's snapshots and stop restoring from them (for a fresh start or a reset).

        The folder itself stays: it may be bind-mounted into a running sandbox.
        """
        self.restore_on_start = False
        forget_snapshots(self.paths.snapshots)

    async def async_is_alive(self) -> bool:
        return await self._loop.call(self._alive())

    async def async_shutdown(self, *, leave_running: bool = False) -> None:
        """Stop the kernel if this object launched it, or if its launcher is gone; otherwise just disconnect.

        ``leave_running``: only disconnect, even from a kernel this object launched (a run of another
        process is still using it).
        """
        await self._loop.call(self._shutdown(leave_running))

    async def async_stop(self) -> None:
        """Stop the kernel as ``shutdown`` does (its snapshots written first) and stay usable: the next operation
        that needs a kernel starts one, restoring the variables from the snapshots. The caller holds the
        session's run lock, so no execution is under way."""

        async def go() -> None:
            if self._closed or self._ready is None:
                return
            await self._shutdown()
            self._closed = False
            self._ready = self._start_error = self._exec_lock = self.remote = self._quota = None
            self._pid, self._pid_start = None, ""
            self.owns_kernel = False
            self.restore_on_start = True

        await self._loop.call(go())

    start = run_sync(async_start)
    wait_ready = run_sync(async_wait_ready)
    execute = run_sync(async_execute)
    interrupt = run_sync(async_interrupt)
    restart = run_sync(async_restart)
    restore = run_sync(async_restore)
    variables = run_sync(async_variables)
    push = run_sync(async_push)
    flush_snapshots = run_sync(async_flush_snapshots)
    is_alive = run_sync(async_is_alive)
    shutdown = run_sync(async_shutdown)
    stop = run_sync(async_stop)

    async def __aenter__(self) -> SandboxKernel:
        await self.async_start()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.async_shutdown()

    def __enter__(self) -> SandboxKernel:
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.shutdown()
