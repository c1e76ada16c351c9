"""``KernelLifecycle``: the life of a session's kernel as one ``SandboxKernel`` sees it: start it (launch or attach,
``launch.py``), wait until it answers and restore the variables, replace it when it dies or hangs, shut it down.

The base of ``SandboxKernel`` (``kernel.py``, the public API) through ``KernelExecution`` (``execution.py``, one
cell). Every method here runs on the sandbox loop (``loop.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from jupyter_client.asynchronous.client import AsyncKernelClient

from llm_agent_magic import volatile
from llm_agent_magic.config import PathsConfig, SandboxConfig
from llm_agent_magic.exceptions import SandboxClosed, SandboxStartError

from ..exceptions import TransferError
from . import isolation
from .hold import holder_alive, lock_taken, session_lock
from .inside import snapshots
from .kernel_log import log_tail
from .launch import Started, attach, launch_local, launch_on_gateway, launched_here
from .loop import SandboxLoop
from .paths import SessionPaths
from .quota import QuotaWatch
from .results import describe_death
from .snapshot_files import snapshot_limits
from .state import kill_pid, pid_alive, read_json
from .transport import RemoteFiles
from .wire import KernelWire

log = logging.getLogger(__name__)

SILENT_TIMEOUT = 30.0


class KernelLifecycle:
    """A session's kernel: started on first need, restarted when it dies, shut down by whoever launched it.

    See ``SandboxKernel`` for who attaches to and who shuts down which kernel.
    """

    def __init__(
        self, session_id: str, *, config: SandboxConfig | None = None, paths: PathsConfig | None = None, restore: bool = True
    ) -> None:
        self.session_id = session_id
        self.config = config or SandboxConfig()
        self.paths = SessionPaths.for_session(session_id, paths)
        # The session's folder (its name holds a hash of the id) reaches prompts in tracebacks and paths.
        volatile.register_path(self.paths.root)
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

    # --- start, attach, ready -------------------------------------------------------------------------

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
        started = attach(self.paths)
        if started is None:
            return False
        self._take(started, owns=False)
        return True

    async def _launch(self) -> None:
        layers = isolation.resolve_layers(self.config)
        self.layers, self.level = layers, layers.level
        if layers.level == "gateway":
            started = await launch_on_gateway(self.config, self.paths, self.session_id, layers)
            self._take(started, owns=True)
            self.remote = RemoteFiles(self._helper, self.paths, self.config)
        else:
            self._take(await launch_local(self.config, self.paths, layers), owns=True)

    def _take(self, started: Started, *, owns: bool) -> None:
        self.kc, self.km, self.owns_kernel = started.kc, started.km, owns
        self.wire = KernelWire(started.kc, self._alive)
        self._pid, self._pid_start = started.pid, started.pid_start
        self.level, self.layers = started.level, started.layers
        self._launch_id = started.launch_id

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
        except BaseException as exc:  # noqa: BLE001 - the error is raised to whoever awaits readiness
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

    async def _helper(self, call: str, timeout: float = SILENT_TIMEOUT) -> dict[str, Any] | None:
        assert self.wire is not None
        return await self.wire.helper(call, timeout)

    async def _interrupt(self) -> None:
        if self.km is not None:
            try:
                await self.km.interrupt_kernel()
                return
            except Exception:  # noqa: BLE001 - a dead kernel or a manager without interrupts: fall back to the message
                pass
        if self.wire is not None:
            self.wire.interrupt()

    # --- snapshots in the kernel ------------------------------------------------------------------------

    async def _restore(self) -> dict[str, Any]:
        max_rows, max_bytes = snapshot_limits(self.config)
        if self.remote is not None:  # the gateway's kernel restores from the copies sent to it
            try:
                await self.remote.push_snapshots()
            except (TransferError, OSError) as exc:
                report = {"restored": [], "failed": {"*": f"the snapshots could not be sent to the gateway's kernel ({exc})"}}
                self.last_restore = report
                return report
        data = await self._helper(
            f"restore({max_rows!r}, {max_bytes!r})", timeout=max(SILENT_TIMEOUT, self.config.startup_timeout)
        )
        report = data or {"restored": [], "failed": {"*": "the kernel did not answer the restore request"}}
        self.last_restore = report
        return report

    async def _flush(self, timeout: float) -> bool:
        if self._closed or self._ready is None or not self._ready.is_set() or self._start_error is not None:
            return True
        if not await self._alive():
            return True
        data = await self._helper(f"flush({timeout!r})", timeout=timeout + 5)
        if self.remote is not None:  # the front end reads the snapshots here: fetch them
            await self.remote.fetch_snapshots(snapshot_limits(self.config)[1])
        return bool(data and data.get("flushed"))

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

    # --- shutdown ---------------------------------------------------------------------------------------

    async def _teardown(self, kill: bool) -> None:
        self._disconnect()
        if self.km is not None:
            await self._stop_launched(now=True)
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
        self._disconnect()
        if leave_running:
            if self.km is not None:  # dropped, not stopped: whoever closes the session next while attached stops it
                launched_here.discard(self._pid or 0)
                self.km = None
            return
        state = read_json(self.paths.state_file) or {}
        if (
            self.km is None
            and alive
            and state.get("pid") == self._pid
            and not holder_alive(state)
            and self._pid not in launched_here
        ):
            # An orphan: the process that launched it is gone (or is this one, having left it to a run).
            kill_pid(self._pid)
            self.paths.state_file.unlink(missing_ok=True)
        if self.km is not None and self.owns_kernel:
            kernel_id = getattr(self.km, "kernel_id", None)
            await self._stop_launched(now=False)
            state = read_json(self.paths.state_file) or {}
            ours = self.remote is None or state.get("kernel_id") == kernel_id  # a gateway's kernel has no pid
            if state.get("pid") == self._pid and ours:
                self.paths.state_file.unlink(missing_ok=True)

    def _disconnect(self) -> None:
        if self.kc is not None:
            self.kc.stop_channels()
            self.kc = self.wire = None

    async def _stop_launched(self, *, now: bool) -> None:
        """Shut down the kernel this object launched (``now``: without asking it to finish first)."""
        try:
            await self.km.shutdown_kernel(now=now)
        except Exception as exc:  # noqa: BLE001 - already dead, whatever the manager says: only its files remain
            log.debug("sandbox kernel shutdown: %s", exc)
        launched_here.discard(self._pid or 0)
        self.km = None
