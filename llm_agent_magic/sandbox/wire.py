"""One client's conversation with a kernel over its channels: readiness, requests, replies and outputs.

Every wait here also watches whether the kernel is still alive, so a dead kernel never stalls the caller.
The kernel is the sandbox's: whatever arrives may be forged or garbled (a bad signature, a header of the
wrong shape). Such a message is skipped and counted in ``malformed``, never raised.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from queue import Empty
from typing import Any, Literal

from jupyter_client.asynchronous.client import AsyncKernelClient

from .results import OutputCollector

log = logging.getLogger(__name__)

#: Seconds between liveness checks while waiting for a kernel.
LIVENESS_INTERVAL = 0.5
#: Name of the in-kernel helper module (see inside/entrypoint.py) and the user_expressions key it answers under.
HELPER = "__import__('_llm_agent_sandbox')"
EXPR_KEY = "llm_agent"

Outcome = Literal["done", "timeout", "died"]
#: Outputs whose cleaning can take long (HTML, SVG and markdown are parsed and sanitized, tracebacks lose
#: their colours): handled in a worker thread, so that the loop they arrive on (the Jupyter server's) goes on
#: serving meanwhile. Streams only append text and stay on the loop.
RICH_OUTPUTS = frozenset({"display_data", "execute_result", "update_display_data", "error"})


def parent_id(msg: Any) -> Any:
    """The msg_id a message answers, or None when the message does not say (or is not a message)."""
    parent = msg.get("parent_header") if isinstance(msg, dict) else None
    return parent.get("msg_id") if isinstance(parent, dict) else None


class KernelWire:
    def __init__(self, kc: AsyncKernelClient, alive: Callable[[], Awaitable[bool]]):
        self.kc = kc
        self.alive = alive
        #: Messages that could not be read (bad signature, not a message) and were skipped.
        self.malformed = 0

    async def _get(self, channel: Any, timeout: float | None) -> dict[str, Any]:
        """The next readable message of ``channel``; raises ``Empty`` after ``timeout`` seconds (None: wait)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                msg = await channel.get_msg(timeout=left)
            except Empty:
                raise
            except Exception as exc:  # noqa: BLE001  # deserialising failed: the message was read and is gone
                self.malformed += 1
                log.debug("skipped a malformed message from the sandbox kernel: %s", str(exc)[:200])
                continue
            if isinstance(msg, dict) and isinstance(msg.get("msg_type"), str):
                return msg
            self.malformed += 1

    async def wait_ready(self, deadline: float) -> Literal["ready", "exited", "timeout"]:
        """Wait for a kernel_info reply and proof that iopub is subscribed."""
        while True:
            msg_id = self.kc.kernel_info()
            if await self.reply(msg_id, 0.5) is not None:
                try:
                    # The kernel publishes status for kernel_info: seeing it proves iopub is subscribed.
                    await self._get(self.kc.iopub_channel, 0.2)
                    break
                except Empty:
                    pass
            if not await self.alive():
                return "exited"
            if time.monotonic() > deadline:
                return "timeout"
        await self.drain()
        return "ready"

    async def drain(self, msg_id: str | None = None, collector: OutputCollector | None = None) -> None:
        """Read what iopub holds now; outputs of ``msg_id`` go to ``collector``."""
        while True:
            try:
                msg = await self._get(self.kc.iopub_channel, 0)
            except Empty:
                return
            if collector is not None and parent_id(msg) == msg_id and msg["msg_type"] != "status":
                await self._handle(collector, msg)

    @staticmethod
    async def _handle(collector: OutputCollector, msg: dict[str, Any]) -> None:
        """``collector.handle(msg)``, rich outputs in a worker thread (``RICH_OUTPUTS``). Awaited one at a time,
        so outputs keep their order."""
        if msg.get("msg_type") not in RICH_OUTPUTS:
            collector.handle(msg)
            return
        work = asyncio.ensure_future(asyncio.to_thread(collector.handle, msg))
        try:
            await asyncio.shield(work)
        except asyncio.CancelledError:
            await asyncio.wait({work})  # whoever reads the collector next finds this output whole
            raise

    async def reply(self, msg_id: str, timeout: float | None) -> dict[str, Any] | None:
        """The shell reply to ``msg_id`` (others are dropped), or None after ``timeout`` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                msg = await self._get(self.kc.shell_channel, left)
            except Empty:
                return None
            if parent_id(msg) == msg_id and isinstance(msg.get("content"), dict):
                return msg

    async def collect(self, msg_id: str, collector: OutputCollector, deadline: float) -> tuple[Outcome, dict[str, Any] | None]:
        """Gather outputs until the reply and the idle status arrive, the deadline passes or the kernel dies."""
        reply_task = asyncio.ensure_future(self.reply(msg_id, None))
        iopub_task = asyncio.ensure_future(self._iopub_until_idle(msg_id, collector))
        pending: set[asyncio.Future[Any]] = {reply_task, iopub_task}
        try:
            while pending:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return "timeout", None
                done, pending = await asyncio.wait(pending, timeout=min(remaining, LIVENESS_INTERVAL))
                for task in done:
                    task.result()
                if pending and not await self.alive():
                    await asyncio.sleep(0.05)  # outputs published just before death are worth keeping
                    await self.drain(msg_id, collector)
                    return "died", None
            return "done", reply_task.result()
        finally:
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)

    async def _iopub_until_idle(self, msg_id: str, collector: OutputCollector) -> None:
        while True:
            msg = await self._get(self.kc.iopub_channel, None)
            if parent_id(msg) != msg_id:
                continue
            if msg["msg_type"] == "status":
                content = msg.get("content")
                if isinstance(content, dict) and content.get("execution_state") == "idle":
                    return
                continue
            await self._handle(collector, msg)

    async def helper(self, call: str, timeout: float) -> dict[str, Any] | None:
        """Evaluate ``_llm_agent_sandbox.<call>`` silently in the kernel (no history, no outputs).

        Returns its JSON answer, or None if the kernel died, did not answer in time, or the call raised.
        """
        msg_id = self.kc.execute(
            "",
            silent=True,
            store_history=False,
            user_expressions={EXPR_KEY: f"{HELPER}.{call}"},
            allow_stdin=False,
            stop_on_error=False,
        )
        deadline = time.monotonic() + timeout
        while (reply := await self.reply(msg_id, LIVENESS_INTERVAL)) is None:
            if time.monotonic() > deadline or not await self.alive():
                return None
        return reply_data(reply["content"])

    def interrupt(self) -> None:
        """Ask the kernel to interrupt itself (works for kernels this process did not start)."""
        self.kc.control_channel.send(self.kc.session.msg("interrupt_request", {}))


def reply_data(content: dict[str, Any]) -> dict[str, Any] | None:
    """What the helper expression answered in an execute reply's ``content`` (None if it did not)."""
    expressions = content.get("user_expressions")
    return expression_data(expressions.get(EXPR_KEY) if isinstance(expressions, dict) else None)


def expression_data(expr: Any) -> dict[str, Any] | None:
    """The JSON object a helper call returned through user_expressions (None if it did not return one)."""
    if not isinstance(expr, dict) or expr.get("status") != "ok":
        if isinstance(expr, dict):
            log.warning("sandbox helper failed: %s: %s", expr.get("ename"), expr.get("evalue"))
        return None
    bundle = expr.get("data")
    data = bundle.get("application/json") if isinstance(bundle, dict) else None
    if isinstance(data, str):  # some kernels send JSON as text
        try:
            data = json.loads(data)
        except ValueError:
            return None
    return data if isinstance(data, dict) else None
