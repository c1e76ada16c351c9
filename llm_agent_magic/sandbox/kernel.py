"""SandboxKernel: a sibling ipykernel per session that runs generated code, remembers variables
and survives failure.

Async first (``async_*`` methods); the blocking methods without the prefix are thin wrappers
for the magic. Every kernel operation runs on one private loop thread (see ``loop.SandboxLoop``).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import shutil
import stat
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from jupyter_client.asynchronous.client import AsyncKernelClient
from jupyter_client.kernelspec import KernelSpecManager

from llm_agent_magic import atomic, volatile
from llm_agent_magic.config import PathsConfig, SandboxConfig
from llm_agent_magic.exceptions import (
    SandboxClosed,
    SandboxError,
    SandboxStartError,
    SnapshotNotFound,
)

from ..exceptions import TransferError
from . import isolation
from .hold import holder_alive, lock_taken, session_lock
from .inside import snapshots
from .inside.summaries import VariableSummary, parse_summaries
from .kernel_log import log_tail, rotate_log
from .launch_plan import build_launch, prepare_launch
from .loop import SandboxLoop, run_sync
from .paths import SessionPaths
from .python_env import sandbox_python
from .quota import QuotaWatch
from .results import ExecutionResult, OutputCollector, OutputLimits, describe_death
from .state import kill_pid, pid_alive, process_start_time, read_json
from .transport import FILES_KEY, RemoteFiles
from .wire import EXPR_KEY, HELPER, KernelWire, expression_data, reply_data

log = logging.getLogger(__name__)

SPEC_NAME = "llm-agent-sandbox"
SILENT_TIMEOUT = 30.0
KERNEL_ARGS = ["--HistoryManager.enabled=False", "--InteractiveShell.colors=nocolor"]
#: Pids of the kernels SandboxKernels of this process launched and still own.
_launched_here: set[int] = set()


class SandboxKernel:
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
        self.session_id = session_id
        self.before_start = before_start
        self.config = config or SandboxConfig()
        self.paths = SessionPaths.for_session(session_id, paths)
        # The session's folder (its name holds a hash of the id) reaches prompts in tracebacks and paths.
        volatile.register_path(self.paths.root)
        self.max_output_chars = max_output_chars
        self.restore_on_start = restore
        self.level: str | None = None
        self.layers: isolation.Layers | None = None
        self.km: Any = None
        self.kc: AsyncKernelClient | None = None
        self.wire: KernelWire | None = None
        self.owns_kernel = False
        self.last_restore: dict[str, Any] | None = None
        self.restarts = 0
        self._loop = SandboxLoop.get()
        self._pid: int | None = None
        self._pid_start = ""
        self._ready: asyncio.Event | None = None
        self._start_error: BaseException | None = None
        self._exec_lock: asyncio.Lock | None = None
        self._quota: QuotaWatch | None = None
        self._closed = False
        #: The session's files on both sides, for a kernel that shares no disk with this process (a gateway's).
        self.remote: RemoteFiles | None = None
        self._launch_id = ""

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
        return (pid_alive(state.get("pid"), state.get("pid_start", ""))
                and self.paths.connection_file(str(state.get("launch_id", ""))).exists())

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
            data = await self._helper(f"after_cell(summary=True, snapshot=False, max_vars={self._max_vars})")
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
            data = await self._helper(f"after_cell(summary=True, snapshot=False, max_vars={self._max_vars})")
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

    async def _flush(self, timeout: float) -> bool:
        if self._closed or self._ready is None or not self._ready.is_set() or self._start_error is not None:
            return True
        if not await self._alive():
            return True
        data = await self._helper(f"flush({timeout!r})", timeout=timeout + 5)
        if self.remote is not None:  # the front end reads the snapshots here: fetch them
            await self.remote.fetch_snapshots(snapshot_limits(self.config)[1])
        return bool(data and data.get("flushed"))

    def load(self, name: str) -> Any:
        """Read variable ``name`` from the session's snapshots into this process (after pending snapshots)."""
        self.flush_snapshots()
        return load_snapshot(self.paths, name, self.config)

    def forget_snapshots(self) -> None:
        """Delete the session's snapshots and stop restoring from them (for a fresh start or a reset).

        The folder itself stays: it may be bind-mounted into a running sandbox.
        """
        self.restore_on_start = False
        folder = self.paths.snapshots
        if folder.is_dir():
            for entry in folder.iterdir():
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry, ignore_errors=True)
                else:
                    entry.unlink(missing_ok=True)

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

    # --- start, attach, ready -------------------------------------------------------------------------

    @property
    def _max_vars(self) -> int:
        return int(self.config.summary_max_variables)

    async def _start(self) -> None:
        if self._closed:
            raise SandboxClosed(self.session_id)
        if self._ready is not None:
            return
        self._ready = asyncio.Event()
        self._exec_lock = asyncio.Lock()
        try:
            self.paths.ensure()
            async with session_lock(self.paths.lock_file):
                attached = self._try_attach()
                if not attached:
                    await self._launch()
        except BaseException as exc:
            self._start_error = exc
            self._ready.set()
            raise
        asyncio.get_running_loop().create_task(self._become_ready(attached))

    def _try_attach(self) -> bool:
        state = read_json(self.paths.state_file)
        if not state or not pid_alive(state.get("pid"), state.get("pid_start", "")):
            return False
        connection_file = self.paths.connection_file(state.get("launch_id", ""))
        if not connection_file.exists():
            return False
        kc = AsyncKernelClient(connection_file=str(connection_file))
        kc.load_connection_file()
        kc.allow_stdin = False
        kc.start_channels(shell=True, iopub=True, stdin=False, hb=False, control=True)
        self.kc, self.km, self.owns_kernel = kc, None, False
        self.wire = KernelWire(kc, self._alive)
        self._pid, self._pid_start = state["pid"], state.get("pid_start", "")
        self.level = state.get("level")
        try:
            self.layers = isolation.Layers(**state["layers"])
        except (KeyError, TypeError):
            self.layers = isolation.Layers(str(self.level))
        return True

    async def _launch(self) -> None:
        self.layers = isolation.resolve_layers(self.config)
        self.level = self.layers.level
        if self.level == "gateway":
            await self._launch_on_gateway()
            return
        runtime = await asyncio.to_thread(sandbox_python, self.config)
        prepare_launch(self.paths)
        launch_id = uuid.uuid4().hex[:8]
        plan = build_launch(self.config, self.paths, self.layers, runtime, self.paths.connection_file(launch_id))
        kernel_dir = self.paths.kernel
        atomic.write_text(kernel_dir / "policy.json", json.dumps(plan.policy, indent=1), mode=0o644)
        spec_dir = kernel_dir / "spec" / SPEC_NAME
        spec_dir.mkdir(parents=True, exist_ok=True)
        spec = {"argv": plan.argv + ["-f", "{connection_file}", *KERNEL_ARGS], "display_name": "llm-agent sandbox",
                "language": "python", "interrupt_mode": "message", "metadata": {"debugger": False}}
        atomic.write_text(spec_dir / "kernel.json", json.dumps(spec, indent=1), mode=0o644)
        self._remove_stale_files()
        km = self.config.kernel_manager_class(
            kernel_name=SPEC_NAME,
            kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(kernel_dir / "spec")]),
            transport="ipc",
            ip=str(self.paths.ipc_dir / launch_id),
            connection_file=str(self.paths.connection_file(launch_id)),
        )
        km.shutdown_wait_time = 2.0
        rotate_log(self.paths.log_file)  # the log of the kernel this one replaces tells why it died
        with open(self.paths.log_file, "wb") as logf:
            await km.start_kernel(env=plan.env, cwd=str(self.paths.workspace), stdout=logf, stderr=logf)
        self.km, self.owns_kernel = km, True
        self._pid = getattr(km.provisioner, "pid", None)
        if self._pid:
            _launched_here.add(self._pid)
        self._pid_start = process_start_time(self._pid) if self._pid else ""
        state = {"pid": self._pid, "pid_start": self._pid_start, "owner_pid": os.getpid(),
                 "owner_start": process_start_time(os.getpid()), "level": self.level,
                 "layers": dataclasses.asdict(self.layers), "launch_id": launch_id, "started": time.time(),
                 "python": runtime.executable}
        atomic.write_text(self.paths.state_file, json.dumps(state, indent=1))
        kc = km.client()
        kc.allow_stdin = False
        kc.start_channels(shell=True, iopub=True, stdin=False, hb=False, control=True)
        self.kc = kc
        self.wire = KernelWire(kc, self._alive)

    async def _launch_on_gateway(self) -> None:
        """A kernel the gateway starts where it runs kernels; the sandbox is set up in it once it answers."""
        from . import gateway  # jupyter_server's gateway client: imported only by sessions that use one

        self.paths.ensure()
        km, kc = await gateway.start_kernel(self.config, self.session_id)
        self.km, self.kc, self.owns_kernel = km, kc, True
        self.wire = KernelWire(kc, self._alive)
        self._pid, self._pid_start = None, ""
        self._launch_id = uuid.uuid4().hex[:8]
        self.remote = RemoteFiles(self._helper, self.paths, self.config)
        state = {"pid": None, "owner_pid": os.getpid(), "owner_start": process_start_time(os.getpid()),
                 "level": self.level, "layers": dataclasses.asdict(self.layers or isolation.Layers("gateway")),
                 "launch_id": self._launch_id, "started": time.time(), "gateway": self.config.gateway_url,
                 "kernel_id": getattr(km, "kernel_id", None), "kernel_name": gateway.kernel_name(self.config)}
        atomic.write_text(self.paths.state_file, json.dumps(state, indent=1))

    def _remove_stale_files(self) -> None:
        """Connection files and sockets of dead launches (called under the session lock, with no live kernel)."""
        for old in self.paths.kernel.glob("connection-*.json"):
            old.unlink(missing_ok=True)
        for entry in self.paths.ipc_dir.iterdir():
            if stat.S_ISSOCK(entry.lstat().st_mode):
                entry.unlink(missing_ok=True)

    async def _become_ready(self, attached: bool) -> None:
        assert self._ready is not None
        try:
            try:
                await self._wait_ready()
            except SandboxStartError:
                if not attached:
                    raise
                if not await self._answers_after_other_runs():
                    # The session's kernel is alive but does not answer, and no run is using it: take it over.
                    await self._replace_kernel(kill=True)
                    await self._wait_ready()
                    attached = False
            if not attached and self.restore_on_start:
                catalog = snapshots.read_catalog(self.paths.snapshots)
                if catalog["variables"]:
                    self.last_restore = await self._restore()
                elif catalog["problems"]:  # e.g. a corrupt catalog, set aside: say so
                    self.last_restore = {"restored": [], "failed": dict(catalog["problems"])}
        except BaseException as exc:  # the error is raised to whoever awaits readiness
            self._start_error = exc
            if self.owns_kernel:
                await self._teardown(kill=True)  # a kernel that never became usable must not linger
        finally:
            self._ready.set()

    async def _answers_after_other_runs(self) -> bool:
        """An attached kernel that is silent while another process's run holds the session is busy running
        that run's cells (they come before our kernel_info): wait for that run instead of killing its kernel."""
        waited = False
        while lock_taken(self.paths, by_others_only=True):
            waited = True
            with contextlib.suppress(SandboxStartError):
                await self._wait_ready()
                return True
        if not waited:
            return False
        with contextlib.suppress(SandboxStartError):
            await self._wait_ready()  # that run just ended: its last cell's replies come first
            return True
        return False

    async def _ensure_ready(self) -> None:
        if self._closed:
            raise SandboxClosed(self.session_id)
        if self._ready is None:
            await self._start()
        assert self._ready is not None
        await self._ready.wait()
        if self._start_error is not None:
            raise self._start_error

    async def _wait_ready(self) -> None:
        assert self.wire is not None
        state = await self.wire.wait_ready(time.monotonic() + self.config.startup_timeout)
        if state == "exited":
            raise SandboxStartError(self.session_id, "the kernel process exited", log_tail(self.paths.log_file))
        if state == "timeout":
            raise SandboxStartError(
                self.session_id, f"no answer within {self.config.startup_timeout:g} s", log_tail(self.paths.log_file)
            )
        if self.remote is not None and self.owns_kernel:
            assert self.kc is not None
            await self.remote.set_up(self.kc, self.wire, self._launch_id, max(SILENT_TIMEOUT, self.config.startup_timeout))

    async def _alive(self) -> bool:
        if self.km is not None:
            return bool(await self.km.is_alive())
        return pid_alive(self._pid, self._pid_start)

    # --- execution -------------------------------------------------------------------------------------

    async def _execute(self, code: str, timeout: float | None, summary: bool, snapshot: bool) -> ExecutionResult:
        await self._ensure_ready()
        assert self._exec_lock is not None
        async with self._exec_lock:
            notes: list[str] = []
            recovered: dict[str, Any] | None = None
            if not await self._alive():
                reason = self._death_reason([])
                recovered = await self._recover(kill=False, restore=True)
                notes.append(f"{reason} before this execution; it was restarted. {_restored_text(recovered)}")
            try:
                result = await self._run_cell(code, timeout, summary, snapshot)
            except asyncio.CancelledError:
                await self._interrupt()  # the caller gave up: do not leave the sandbox busy
                raise
            if recovered is not None:
                result.restored = recovered.get("restored", []) + result.restored
                result.not_restored = {**recovered.get("failed", {}), **result.not_restored}
                result.message = " ".join(notes + ([result.message] if result.message else []))
            return result

    async def _run_cell(self, code: str, timeout: float | None, summary: bool, snapshot: bool) -> ExecutionResult:
        kc, wire = self.kc, self.wire
        assert kc is not None and wire is not None
        timeout = self.config.execution_timeout if timeout is None else timeout
        started = time.monotonic()
        expressions = {}
        if summary or snapshot:
            expressions[EXPR_KEY] = f"{HELPER}.after_cell(summary={summary}, snapshot={snapshot}, max_vars={self._max_vars})"
        if self.remote is not None:  # what the code left in its workspace, in the same reply: no extra round trip
            expressions[FILES_KEY] = f"{HELPER}.listing('workspace')"
        watch = self._quota_watch()
        if watch is not None:
            await watch.start()
        sent_note = ""
        if self.remote is not None:  # files attached or uploaded here since the last execution
            try:
                await self.remote.push_workspace()
            except (TransferError, OSError) as exc:
                sent_note = f"files could not be sent to the gateway's kernel ({exc})"
        msg_id = kc.execute(code, store_history=True, user_expressions=expressions, allow_stdin=False, stop_on_error=False)
        collector = OutputCollector(self._output_limits())
        malformed_before = wire.malformed
        watcher = asyncio.get_running_loop().create_task(watch.watch(self._interrupt)) if watch is not None else None
        try:
            outcome, reply = await wire.collect(msg_id, collector, started + timeout)
        finally:
            if watcher is not None:
                watcher.cancel()
        result = ExecutionResult(status="ok", max_output_chars=self.max_output_chars)
        data: dict[str, Any] | None = None
        listing: dict[str, Any] | None = None
        if outcome == "done":
            content = (reply or {}).get("content", {})
            if self.remote is not None and isinstance(content.get("user_expressions"), dict):
                listing = expression_data(content["user_expressions"].get(FILES_KEY))
            result.status = "ok" if content.get("status") == "ok" else "error"
            data = reply_data(content)
            if result.status == "error" and summary:
                data = await self._helper(f"after_cell(summary=True, snapshot=False, max_vars={self._max_vars})")
            err = next((o for o in collector.outputs if o["output_type"] == "error"), None)
            if err and err["ename"] == "MemoryError":
                result.message = (f"the sandbox ran out of its {self.config.memory_limit_mb} MB memory limit "
                                  f"(MemoryError); free memory with `del`, or work on a smaller sample")
        elif outcome == "timeout":
            await self._interrupt()
            outcome, reply = await wire.collect(msg_id, collector, time.monotonic() + self.config.interrupt_grace)
            result.status = "timeout"
            if outcome == "done":
                result.message = f"the code ran longer than {timeout:g} s and was interrupted"
                if summary:
                    data = await self._helper(f"after_cell(summary=True, snapshot=False, max_vars={self._max_vars})")
            elif outcome == "timeout":
                report = await self._recover(kill=True, restore=True)
                result.message = (f"the code ran longer than {timeout:g} s and did not stop when interrupted; "
                                  f"the sandbox kernel was restarted. {_restored_text(report)}")
                _apply_restore(result, report)
        if outcome == "died":
            result.status = "died"
            reason = self._death_reason(collector.outputs)
            report = await self._recover(kill=False, restore=True)
            result.message = f"{reason}; it was restarted. {_restored_text(report)}"
            _apply_restore(result, report)
        if summary and data is None and result.status in ("died", "timeout"):
            data = await self._helper(f"after_cell(summary=True, snapshot=False, max_vars={self._max_vars})")
        collector.malformed += wire.malformed - malformed_before
        result.outputs = collector.finish()
        result.execution_count = collector.execution_count
        if collector.spill_path is not None:
            result.full_output_path = str(collector.spill_path)
        result.duration = time.monotonic() - started
        if data:
            result.variables, result.variables_omitted = parse_summaries(data.get("summary"))
            result.snapshot = data.get("snapshots")
        result.metadata = {
            **(self.layers or isolation.Layers(str(self.level))).metadata(), "session_id": self.session_id,
            "kernel_pid": self._pid, "attached": not self.owns_kernel, "restarts": self.restarts,
        }
        if watch is not None:
            result.metadata["disk"] = await watch.finish()
            if watch.exceeded:
                result.status = "error" if result.status == "ok" else result.status
                result.message = " ".join(filter(None, [result.message, watch.message()]))
        if sent_note:
            result.message = " ".join(filter(None, [result.message, sent_note]))
        if self.remote is not None and self.kc is not None and result.status != "died":
            notes = await self.remote.after_execution(data, listing, snapshot_limits(self.config)[1])
            result.message = " ".join(filter(None, [result.message, *notes]))
        self._keep_long_output(result)
        return result

    def _quota_watch(self) -> QuotaWatch | None:
        quota = self.config.workspace_quota_mb
        if quota <= 0 or self.remote is not None:  # a gateway's kernel fills its own disk, not this one
            return None
        if self._quota is None or self._quota.quota != quota * 2**20:
            self._quota = QuotaWatch([self.paths.workspace, self.paths.run], quota)
        return self._quota

    async def _helper(self, call: str, timeout: float = SILENT_TIMEOUT) -> dict[str, Any] | None:
        assert self.wire is not None
        return await self.wire.helper(call, timeout)

    async def _restore(self) -> dict[str, Any]:
        max_rows, max_bytes = snapshot_limits(self.config)
        if self.remote is not None:  # the gateway's kernel restores from the copies sent to it
            try:
                await self.remote.push_snapshots()
            except (TransferError, OSError) as exc:
                report = {"restored": [], "failed": {"*": f"the snapshots could not be sent to the gateway's kernel ({exc})"}}
                self.last_restore = report
                return report
        data = await self._helper(f"restore({max_rows!r}, {max_bytes!r})",
                                  timeout=max(SILENT_TIMEOUT, self.config.startup_timeout))
        report = data or {"restored": [], "failed": {"*": "the kernel did not answer the restore request"}}
        self.last_restore = report
        return report

    async def _interrupt(self) -> None:
        if self.km is not None:
            try:
                await self.km.interrupt_kernel()
                return
            except Exception:  # a dead kernel or a manager without interrupts: fall back to the message
                pass
        if self.wire is not None:
            self.wire.interrupt()

    # --- death and recovery ---------------------------------------------------------------------------

    def _death_reason(self, outputs: list[dict[str, Any]]) -> str:
        process = getattr(getattr(self.km, "provisioner", None), "process", None)
        return describe_death(
            process.poll() if process is not None else None,
            wrapped=self.level == "full",
            evidence=log_tail(self.paths.log_file, 30) + "".join(o.get("text", "") + o.get("ename", "") for o in outputs),
            memory_limit_mb=self.config.memory_limit_mb,
            cpu_time_limit=self.config.cpu_time_limit,
        )

    async def _recover(self, kill: bool, restore: bool) -> dict[str, Any]:
        """Start a fresh kernel (or attach to one another process already restarted) and restore variables."""
        await self._ensure_ready()
        await self._replace_kernel(kill=kill)
        await self._wait_ready()
        self.restarts += 1
        if not restore:
            return {"restored": [], "failed": {}}
        return await self._restore()

    async def _replace_kernel(self, kill: bool) -> None:
        old_pid = self._pid
        await self._teardown(kill=kill)
        async with session_lock(self.paths.lock_file):
            state = read_json(self.paths.state_file) or {}
            if state.get("pid") != old_pid and self._try_attach():
                return
            await self._launch()

    async def _teardown(self, kill: bool) -> None:
        if self.kc is not None:
            self.kc.stop_channels()
            self.kc = self.wire = None
        if self.km is not None:
            try:
                await self.km.shutdown_kernel(now=True)
            except Exception as exc:  # already dead: only the files remain to clean up
                log.debug("sandbox kernel shutdown: %s", exc)
            _launched_here.discard(self._pid or 0)
            self.km = None
        elif kill:
            kill_pid(self._pid)  # a hung kernel another process started: it cannot be shut down politely

    async def _shutdown(self, leave_running: bool = False) -> None:
        if self._closed:
            return
        self._closed = True
        if self._ready is not None and not self._ready.is_set():
            await self._ready.wait()
        # No other process can attach to a gateway's kernel (it is reached through this one's manager): left
        # running, it would only be leaked on the gateway.
        leave_running = leave_running and self.remote is None
        alive = self.kc is not None and self._start_error is None and await self._alive()
        if alive and not leave_running:
            await self._helper("flush(30.0)", timeout=35.0)  # snapshots still being written
            if self.remote is not None:  # keep this side's copy whole, then leave nothing behind on the gateway
                await self.remote.fetch_snapshots(snapshot_limits(self.config)[1])
                await self._helper("cleanup()", timeout=SILENT_TIMEOUT)
        if self.kc is not None:
            self.kc.stop_channels()
            self.kc = self.wire = None
        if leave_running:
            if self.km is not None:  # dropped, not stopped: whoever closes the session next while attached stops it
                _launched_here.discard(self._pid or 0)
                self.km = None
            return
        state = read_json(self.paths.state_file) or {}
        if (self.km is None and alive and state.get("pid") == self._pid and not holder_alive(state)
                and self._pid not in _launched_here):
            # An orphan: the process that launched it is gone (or is this one, having left it to a run).
            kill_pid(self._pid)
            self.paths.state_file.unlink(missing_ok=True)
        if self.km is not None and self.owns_kernel:
            try:
                await self.km.shutdown_kernel(now=False)
            except Exception as exc:
                log.debug("sandbox kernel shutdown: %s", exc)
            state = read_json(self.paths.state_file) or {}
            ours = self.remote is None or state.get("kernel_id") == getattr(self.km, "kernel_id", None)  # pid is None
            if state.get("pid") == self._pid and ours:
                self.paths.state_file.unlink(missing_ok=True)
            _launched_here.discard(self._pid or 0)
            self.km = None

    def _output_limits(self) -> OutputLimits:
        return OutputLimits(
            stream_chars=self.config.max_cell_output_kb * 1000,
            rich_chars=int(self.config.max_rich_output_mb * 1e6),
            displays=self.config.max_displays,
            spill_dir=self.paths.outputs,
        )

    def _keep_long_output(self, result: ExecutionResult) -> None:
        if result.full_output_path:  # the collector already wrote the whole output
            return
        text = result.output_text()
        if len(text) <= result.output_budget(self.max_output_chars)[1]:
            return
        name = f"{time.strftime('%Y%m%d-%H%M%S')}-{result.execution_count or 0}-{os.getpid()}.txt"
        path = self.paths.outputs / name
        atomic.write_text(path, text, mode=0o666)
        result.full_output_path = str(path)


def load_snapshot(paths: SessionPaths, name: str, config: SandboxConfig | None = None, *,
                  set_aside: bool = True) -> Any:
    """Read one snapshot of a session, within ``config``'s snapshot limits.

    ``SnapshotNotFound`` says which variables exist, and why this one was not saved or was refused
    (a catalog entry or file the sandbox tampered with, or one beyond the limits). ``set_aside=False``:
    an unusable catalog stays where it is (``read_catalog``).
    """
    catalog = snapshots.read_catalog(paths.snapshots, set_aside=set_aside)
    known = sorted(catalog["variables"])
    entry = catalog["variables"].get(name)
    if entry is None:
        reason = catalog["not_persisted"].get(name, {}).get("reason", "")
        refused = catalog["problems"].get(name) or catalog["problems"].get(snapshots.CATALOG, "")
        raise SnapshotNotFound(name, paths.session_id, known, reason, refused)
    max_rows, max_bytes = snapshot_limits(config or SandboxConfig())
    try:
        return snapshots.load_entry(entry, paths.snapshots, max_rows=max_rows, max_bytes=max_bytes)
    except FileNotFoundError:
        raise SnapshotNotFound(name, paths.session_id, known, refused="its file is missing") from None
    except Exception as exc:  # refused (UnsafePath), or a file pandas, numpy or json cannot read
        why = getattr(exc, "reason", "") or f"it could not be read ({type(exc).__name__}: {str(exc)[:200]})"
        raise SnapshotNotFound(name, paths.session_id, known, refused=why) from None


def snapshot_limits(config: SandboxConfig) -> tuple[int, int]:
    """Rows and bytes one snapshot may take when loaded back."""
    return int(config.snapshot_max_rows), int(config.snapshot_max_mb * 2**20)


def _apply_restore(result: ExecutionResult, report: dict[str, Any]) -> None:
    result.restored = list(report.get("restored", []))
    result.not_restored = dict(report.get("failed", {}))


def _restored_text(report: dict[str, Any]) -> str:
    restored = report.get("restored", [])
    failed = report.get("failed", {})
    text = f"Restored from snapshots: {', '.join(restored)}." if restored else "No variables were restored."
    if failed:
        text += " Not restored: " + "; ".join(f"{k} ({v})" for k, v in failed.items()) + "."
    return text
