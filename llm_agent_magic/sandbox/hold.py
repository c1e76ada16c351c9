"""One process at a time uses a session's sandbox.

A ``SessionHold`` is this process's claim on a session: while it is held, no other process starts,
restarts, resets or attaches to that session's kernel. Another process that asks waits (up to
``SandboxConfig.session_wait_timeout``), then gets ``SessionBusy`` naming the holder. The claim is an
``flock`` on ``kernel/hold``, so a process that dies releases it by dying; within one process every
SandboxKernel of the session shares it (flock would otherwise lock out its own process).

Within a hold, ``session_lock`` (an ``flock`` on ``kernel/lock``, held for moments) decides which
SandboxKernel starts, attaches to or replaces the session's kernel.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import json
import os
import sys
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from llm_agent_magic import atomic
from llm_agent_magic.exceptions import SessionBusy

from .paths import SessionPaths
from .state import describe_process, pid_alive, process_start_time, read_json

POLL = 0.1
_lock = threading.Lock()
_held: dict[str, list[int]] = {}  # hold file -> [fd, count, pid]


class SessionHold:
    """This process's claim on one session (see the module docstring). Release it exactly once."""

    def __init__(self, paths: SessionPaths) -> None:
        self.paths = paths
        self.key = str(paths.hold_file)
        self.released = False

    @classmethod
    async def acquire(cls, paths: SessionPaths, timeout: float) -> SessionHold:
        """Claim the session, waiting up to ``timeout`` seconds for the process that holds it."""
        hold = cls(paths)
        deadline = time.monotonic() + max(timeout, 0.0)
        while not hold._try():
            if time.monotonic() >= deadline:
                holder = read_json(paths.holder_file) or {}
                pid = holder.get("pid")
                who = holder.get("who") or (describe_process(pid) if isinstance(pid, int) else "another process")
                since = holder.get("since")
                raise SessionBusy(paths.session_id, who, since if isinstance(since, (int, float)) else None, timeout)
            await asyncio.sleep(POLL)
        return hold

    def _try(self) -> bool:
        with _lock:
            entry = _held.get(self.key)
            if entry is not None and entry[2] == os.getpid():
                entry[1] += 1
                return True
            fd = os.open(self.key, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                os.close(fd)
                if exc.errno in (errno.EAGAIN, errno.EACCES):
                    return False
                raise
            _held[self.key] = [fd, 1, os.getpid()]
        pid = os.getpid()
        holder = {"pid": pid, "pid_start": process_start_time(pid), "since": time.time(), "who": describe_process(pid),
                  "argv": sys.argv[:8]}
        atomic.write_text(self.paths.holder_file, json.dumps(holder, indent=1), mode=0o644)
        return True

    def release(self) -> None:
        if self.released:
            return
        self.released = True
        with _lock:
            entry = _held.get(self.key)
            if entry is None or entry[2] != os.getpid():
                return
            entry[1] -= 1
            if entry[1] > 0:
                return
            del _held[self.key]
            self.paths.holder_file.unlink(missing_ok=True)
            fcntl.flock(entry[0], fcntl.LOCK_UN)
            os.close(entry[0])


def holder_alive(state: dict[str, Any]) -> bool:
    """Is the process that launched a kernel (``state.json``) another live process than this one?"""
    owner = state.get("owner_pid")
    return isinstance(owner, int) and owner != os.getpid() and pid_alive(owner, state.get("owner_start", ""))


@contextlib.asynccontextmanager
async def session_lock(path: Path, timeout: float = 60.0) -> AsyncIterator[None]:
    """An exclusive lock between processes (and SandboxKernels) deciding who starts a session's kernel."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES) or time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.05)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
