"""``KernelExecution``: one cell in the session's kernel, within its time limit, output limits and disk quota,
and what became of it when the code overran, ran out of memory or killed the kernel (``ExecutionResult``).

Between ``KernelLifecycle`` (``lifecycle.py``: the kernel it runs in, replaced when it dies) and
``SandboxKernel`` (``kernel.py``: the public API).
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

from llm_agent_magic import atomic

from ..exceptions import TransferError
from . import isolation
from .collector import OutputCollector
from .inside.summaries import parse_summaries
from .lifecycle import KernelLifecycle
from .quota import QuotaWatch
from .results import ExecutionResult, OutputLimits
from .snapshot_files import snapshot_limits
from .transport import FILES_KEY
from .wire import EXPR_KEY, HELPER, expression_data, reply_data


class KernelExecution(KernelLifecycle):
    """Runs cells; never raises for errors in the code, timeouts or kernel death (see ``ExecutionResult``)."""

    max_output_chars = 8000

    async def _execute(self, code: str, timeout: float | None, summary: bool, snapshot: bool) -> ExecutionResult:
        await self._ensure_ready()
        assert self._exec_lock is not None
        async with self._exec_lock:
            recovered: dict[str, Any] | None = None
            note = ""
            if not await self._alive():
                reason = self._death_reason([])
                recovered = await self._recover(kill=False, restore=True)
                note = f"{reason} before this execution; it was restarted. {restored_text(recovered)}"
            try:
                result = await self._run_cell(code, timeout, summary, snapshot)
            except asyncio.CancelledError:
                await self._interrupt()  # the caller gave up: do not leave the sandbox busy
                raise
            if recovered is not None:
                result.restored = recovered.get("restored", []) + result.restored
                result.not_restored = {**recovered.get("failed", {}), **result.not_restored}
                result.message = joined(note, result.message)
            return result

    def _summary_call(self, summary: bool = True, snapshot: bool = False) -> str:
        """The helper's call that summarizes (and snapshots) the kernel's variables after a cell."""
        max_vars = int(self.config.summary_max_variables)
        return f"after_cell(summary={summary}, snapshot={snapshot}, max_vars={max_vars})"

    async def _run_cell(self, code: str, timeout: float | None, summary: bool, snapshot: bool) -> ExecutionResult:
        kc, wire = self.kc, self.wire
        assert kc is not None and wire is not None
        timeout = self.config.execution_timeout if timeout is None else timeout
        started = time.monotonic()
        expressions = {}
        if summary or snapshot:
            expressions[EXPR_KEY] = f"{HELPER}.{self._summary_call(summary, snapshot)}"
        if self.remote is not None:  # what the code left in its workspace, in the same reply: no extra round trip
            expressions[FILES_KEY] = f"{HELPER}.listing('workspace')"
        watch = self._quota_watch()
        if watch is not None:
            await watch.start()
        sent_note = await self._send_workspace()
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
        data, listing = await self._settle(result, outcome, reply, msg_id, collector, timeout, summary)
        collector.malformed += wire.malformed - malformed_before  # the wire of this cell, even if since replaced
        self._fill(result, collector, data, started)
        if watch is not None:
            result.metadata["disk"] = await watch.finish()
            if watch.exceeded:
                result.status = "error" if result.status == "ok" else result.status
                result.message = joined(result.message, watch.message())
        result.message = joined(result.message, sent_note)
        if self.remote is not None and self.kc is not None and result.status != "died":
            notes = await self.remote.after_execution(data, listing, snapshot_limits(self.config)[1])
            result.message = joined(result.message, *notes)
        self._keep_long_output(result)
        return result

    async def _send_workspace(self) -> str:
        """Files attached or uploaded here since the last execution, sent to a gateway's kernel; a note if they failed."""
        if self.remote is None:
            return ""
        try:
            await self.remote.push_workspace()
        except (TransferError, OSError) as exc:
            return f"files could not be sent to the gateway's kernel ({exc})"
        return ""

    async def _settle(
        self,
        result: ExecutionResult,
        outcome: str,
        reply: dict[str, Any] | None,
        msg_id: str,
        collector: OutputCollector,
        timeout: float,
        summary: bool,
    ) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        """The status and message of ``result`` from how the cell ended; the helper's data and the workspace listing."""
        data: dict[str, Any] | None = None
        listing: dict[str, Any] | None = None
        if outcome == "done":
            data, listing = await self._after_reply(result, reply, collector, summary)
        elif outcome == "timeout":
            outcome, data = await self._after_timeout(result, msg_id, collector, timeout, summary)
        if outcome == "died":
            result.status = "died"
            reason = self._death_reason(collector.outputs)
            report = await self._recover(kill=False, restore=True)
            result.message = f"{reason}; it was restarted. {restored_text(report)}"
            apply_restore(result, report)
        if summary and data is None and result.status in ("died", "timeout"):
            data = await self._helper(self._summary_call())
        return data, listing

    async def _after_reply(
        self, result: ExecutionResult, reply: dict[str, Any] | None, collector: OutputCollector, summary: bool
    ) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        content = (reply or {}).get("content", {})
        listing = None
        if self.remote is not None and isinstance(content.get("user_expressions"), dict):
            listing = expression_data(content["user_expressions"].get(FILES_KEY))
        result.status = "ok" if content.get("status") == "ok" else "error"
        data = reply_data(content)
        if result.status == "error" and summary:
            data = await self._helper(self._summary_call())
        err = next((o for o in collector.outputs if o["output_type"] == "error"), None)
        if err and err["ename"] == "MemoryError":
            result.message = (
                f"the sandbox ran out of its {self.config.memory_limit_mb} MB memory limit "
                f"(MemoryError); free memory with `del`, or work on a smaller sample"
            )
        return data, listing

    async def _after_timeout(
        self, result: ExecutionResult, msg_id: str, collector: OutputCollector, timeout: float, summary: bool
    ) -> tuple[str, dict[str, Any] | None]:
        """Interrupt the overrunning cell; restart the kernel if that does not stop it. Returns the new outcome."""
        assert self.wire is not None
        await self._interrupt()
        outcome, _ = await self.wire.collect(msg_id, collector, time.monotonic() + self.config.interrupt_grace)
        result.status = "timeout"
        data = None
        if outcome == "done":
            result.message = f"the code ran longer than {timeout:g} s and was interrupted"
            if summary:
                data = await self._helper(self._summary_call())
        elif outcome == "timeout":
            report = await self._recover(kill=True, restore=True)
            result.message = (
                f"the code ran longer than {timeout:g} s and did not stop when interrupted; "
                f"the sandbox kernel was restarted. {restored_text(report)}"
            )
            apply_restore(result, report)
        return outcome, data

    def _fill(self, result: ExecutionResult, collector: OutputCollector, data: dict[str, Any] | None, started: float) -> None:
        """Outputs, variables, snapshots and metadata of a finished cell."""
        result.outputs = collector.finish()
        result.execution_count = collector.execution_count
        if collector.spill_path is not None:
            result.full_output_path = str(collector.spill_path)
        result.duration = time.monotonic() - started
        if data:
            result.variables, result.variables_omitted = parse_summaries(data.get("summary"))
            result.snapshot = data.get("snapshots")
        result.metadata = {
            **(self.layers or isolation.Layers(str(self.level))).metadata(),
            "session_id": self.session_id,
            "kernel_pid": self._pid,
            "attached": not self.owns_kernel,
            "restarts": self.restarts,
        }

    def _quota_watch(self) -> QuotaWatch | None:
        quota = self.config.workspace_quota_mb
        if quota <= 0 or self.remote is not None:  # a gateway's kernel fills its own disk, not this one
            return None
        if self._quota is None or self._quota.quota != quota * 2**20:
            self._quota = QuotaWatch([self.paths.workspace, self.paths.run], quota)
        return self._quota

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


def joined(*parts: str) -> str:
    """Messages joined by spaces, the empty ones left out."""
    return " ".join(filter(None, parts))


def apply_restore(result: ExecutionResult, report: dict[str, Any]) -> None:
    result.restored = list(report.get("restored", []))
    result.not_restored = dict(report.get("failed", {}))


def restored_text(report: dict[str, Any]) -> str:
    restored = report.get("restored", [])
    failed = report.get("failed", {})
    text = f"Restored from snapshots: {', '.join(restored)}." if restored else "No variables were restored."
    if failed:
        text += " Not restored: " + "; ".join(f"{k} ({v})" for k, v in failed.items()) + "."
    return text
