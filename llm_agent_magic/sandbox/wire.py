"""One client's conversation with a kernel over its channels: readiness, requests, replies and outputs.

Every wait here also watches whether the kernel is still alive, so a dead kernel never stalls the caller.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from queue import Empty
from typing import Any, Awaitable, Callable, Literal

from jupyter_client.asynchronous.client import AsyncKernelClient

from .results import OutputCollector

log = logging.getLogger(__name__)

#: Seconds between liveness checks while waiting for a kernel.
LIVENESS_INTERVAL = 0.5
#: Name of the in-kernel helper module (see launcher.py) and the user_expressions key it answers under.
HELPER = "__import__('_llm_agent_sandbox')"
EXPR_KEY = "llm_agent"

Outcome = Literal["done", "timeout", "died"]


class KernelWire:
    def __init__(self, kc: AsyncKernelClient, alive: Callable[[], Awaitable[bool]]):
        self.kc = kc
        self.alive = alive

    async def wait_ready(self, deadline: float) -> Literal["ready", "exited", "timeout"]:
        """Wait for a kernel_info reply and proof that iopub is subscribed."""
        while True:
            msg_id = self.kc.kernel_info()
            if await self.reply(msg_id, 0.5) is not None:
                try:
                    # The kernel publishes status for kernel_info: seeing it proves iopub is subscribed.
                    await self.kc.iopub_channel.get_msg(timeout=0.2)
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
                msg = await self.kc.iopub_channel.get_msg(timeout=0)
            except Empty:
                return
            if collector is not None and msg["parent_header"].get("msg_id") == msg_id and msg["msg_type"] != "status":
                collector.handle(msg)

    async def reply(self, msg_id: str, timeout: float | None) -> dict[str, Any] | None:
        """The shell reply to ``msg_id`` (others are dropped), or None after ``timeout`` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                msg = await self.kc.shell_channel.get_msg(timeout=left)
            except Empty:
                return None
            if msg["parent_header"].get("msg_id") == msg_id:
                return msg

    async def collect(
        self, msg_id: str, collector: OutputCollector, deadline: float
    ) -> tuple[Outcome, dict[str, Any] | None]:
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
            msg = await self.kc.iopub_channel.get_msg(timeout=None)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            if msg["msg_type"] == "status":
                if msg["content"].get("execution_state") == "idle":
                    return
                continue
            collector.handle(msg)

    async def helper(self, call: str, timeout: float) -> dict[str, Any] | None:
        """Evaluate ``_llm_agent_sandbox.<call>`` silently in the kernel (no history, no outputs).

        Returns its JSON answer, or None if the kernel died, did not answer in time, or the call raised.
        """
        msg_id = self.kc.execute("", silent=True, store_history=False,
                                 user_expressions={EXPR_KEY: f"{HELPER}.{call}"}, allow_stdin=False, stop_on_error=False)
        deadline = time.monotonic() + timeout
        while (reply := await self.reply(msg_id, LIVENESS_INTERVAL)) is None:
            if time.monotonic() > deadline or not await self.alive():
                return None
        return expression_data(reply["content"].get("user_expressions", {}).get(EXPR_KEY))

    def interrupt(self) -> None:
        """Ask the kernel to interrupt itself (works for kernels this process did not start)."""
        self.kc.control_channel.send(self.kc.session.msg("interrupt_request", {}))


def expression_data(expr: dict[str, Any] | None) -> dict[str, Any] | None:
    """The JSON a helper call returned through user_expressions."""
    if not expr or expr.get("status") != "ok":
        if expr:
            log.warning("sandbox helper failed: %s: %s", expr.get("ename"), expr.get("evalue"))
        return None
    data = expr.get("data", {}).get("application/json")
    if isinstance(data, str):  # some kernels send JSON as text
        data = json.loads(data)
    return data
