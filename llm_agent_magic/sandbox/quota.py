"""The sandbox's disk quota: the space its workspace and scratch folders take, watched while code runs.

Why a watcher in the parent, not a file system of fixed size: a size-limited tmpfs would hold the
workspace in RAM (and lose it with the sandbox), while loop-mounted images and project quotas need
root. RLIMIT_FSIZE (``max_file_size_mb``) caps each file; this caps the total. While an execution
runs, the parent measures the folders every ``POLL`` seconds and interrupts the execution that
passes the quota, and it measures once more when the execution ends; the result says what it found.
What gets through is what the code writes between two measurements (each file still capped at
``max_file_size_mb``), and it stays until deleted: while the sandbox is over its quota, any
execution that makes it grow further is interrupted too.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

POLL = 0.2
MB = 2**20
INLINE_WALK = 0.002


def disk_usage(folders: list[Path]) -> int:
    """Bytes allocated to the files under ``folders`` (links are not followed, each inode counted once)."""
    seen: set[tuple[int, int]] = set()
    total = 0
    stack = [str(f) for f in folders]
    while stack:
        try:
            entries = os.scandir(stack.pop())
        except OSError:
            continue
        with entries:
            for entry in entries:
                try:
                    st = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                elif (st.st_dev, st.st_ino) not in seen:
                    seen.add((st.st_dev, st.st_ino))
                    total += st.st_blocks * 512
    return total


class QuotaWatch:
    """A sandbox's watch over its disk use, one execution at a time (``start``, ``watch``, ``finish``)."""

    def __init__(self, folders: list[Path], quota_mb: int) -> None:
        self.folders = folders
        self.quota = quota_mb * MB
        self.limit = self.quota
        self.used: int | None = None
        self.exceeded = False
        self.interrupted = False
        self._walk = 0.0  # seconds the last measurement took

    async def measure(self) -> int:
        started = time.perf_counter()
        if self._walk < INLINE_WALK:  # a small workspace: measuring costs less than a hop to a thread
            self.used = disk_usage(self.folders)
        else:
            self.used = await asyncio.to_thread(disk_usage, self.folders)
        self._walk = time.perf_counter() - started
        return self.used

    async def start(self) -> None:
        self.exceeded = self.interrupted = False
        # What the last execution ended with (only the sandbox writes there); measured on the first one.
        used = self.used if self.used is not None else await self.measure()
        # Already over the quota (an earlier execution): code may still delete, but not grow.
        self.limit = max(self.quota, used)

    async def watch(self, interrupt: Callable[[], Awaitable[Any]]) -> None:
        """Measure until cancelled; interrupt the execution once it passes the limit."""
        while True:
            await asyncio.sleep(POLL)
            if await self.measure() > self.limit:
                self.exceeded = self.interrupted = True
                await interrupt()
                return

    async def finish(self) -> dict[str, Any]:
        """The last measurement, for the result's metadata."""
        if await self.measure() > self.limit:
            self.exceeded = True
        return {"used_mb": round((self.used or 0) / MB, 1), "quota_mb": self.quota // MB, "exceeded": self.exceeded}

    def message(self) -> str:
        what = "so the execution was stopped" if self.interrupted else "by the end of the execution"
        return (
            f"the sandbox's files took {(self.used or 0) / MB:.1f} MB, more than its disk quota of {self.quota // MB} MB "
            f"(SandboxConfig.workspace_quota_mb), {what}; delete files it no longer needs (os.remove) or write "
            f"less"
        )
