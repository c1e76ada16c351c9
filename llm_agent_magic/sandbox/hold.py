"""One run at a time in a session's sandbox, whichever process or front end asks.

Front ends share a session through what is on disk and through its live sandbox kernel: any process
attaches to the kernel another one launched (through its connection file). What keeps two runs from
interleaving in that kernel is the session's **run lock**, held for the duration of one run and of anything
else that executes in the kernel (``%agent vars/pull/push``, a reset, the shutdown of the kernel). It is
a `filelock <https://py-filelock.readthedocs.io/>`_ lock (``flock``) on ``kernel/hold``: the operating
system drops it when its process dies, so a lock left by a killed process is free at once. Two
``RunLock`` objects exclude each other even inside one process (each has its own descriptor), and one
``RunLock`` is not re-entrant either: a second task of the same session waits like another process.

Who holds the lock is written beside it (``kernel/holder.json``: pid, the front end, since when, what for)
so a waiter can say whom it waits for. That file is only a label: it is believed only while the lock is
taken and its pid is the same live process (pid and start time), so a stale file left by a killed
holder never blocks and never names a dead process.

``session_lock`` (an ``flock`` on ``kernel/lock``, held for moments) decides which SandboxKernel starts,
attaches to or replaces the session's kernel.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import json
import os
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from llm_agent_magic import atomic
from llm_agent_magic.exceptions import SessionBusy

from .paths import SessionPaths
from .state import pid_alive, process_start_time, read_json

#: Seconds between two tries of a taken lock.
POLL = 0.05
#: The front ends a holder names, as a waiter shows them (``RunRequest.origin`` and ``SessionManager.front_end``).
FRONT_ENDS = {
    "magic": "%%agent in a notebook",
    "panel": "the side panel",
    "batch": "llm-agent run",
    "openai": "the OpenAI endpoint",
}
#: Lock files held by this process (a pid's own holds are not "another run" to it).
_held_here: dict[str, int] = {}


def front_end_name(front_end: str) -> str:
    return FRONT_ENDS.get(front_end, front_end or "another program")


@dataclass(frozen=True)
class Holder:
    """Who holds a session's run lock: ``task`` ("a run started"), from ``front_end``, by ``pid`` since ``since``."""

    pid: int
    front_end: str
    since: float
    task: str = "a run started"

    def describe(self) -> str:
        """``a run started from the side panel (pid 123, since 18:02:05)``"""
        when = time.strftime("%H:%M:%S", time.localtime(self.since))
        return f"{self.task} from {front_end_name(self.front_end)} (pid {self.pid}, since {when})"

    def to_dict(self) -> dict[str, Any]:
        return {"pid": self.pid, "front_end": self.front_end, "since": self.since, "task": self.task}


def read_holder(paths: SessionPaths) -> Holder | None:
    """What ``holder.json`` says, if it names a live process (the one that wrote it: same start time)."""
    data = read_json(paths.holder_file) or {}
    pid, start, since = data.get("pid"), data.get("pid_start"), data.get("since")
    if not isinstance(pid, int) or not isinstance(start, str) or not start or not pid_alive(pid, start):
        return None
    if not isinstance(since, (int, float)):
        return None
    front_end, task = data.get("front_end"), data.get("task")
    return Holder(
        pid,
        front_end if isinstance(front_end, str) else "",
        float(since),
        task if isinstance(task, str) and task else "a run started",
    )


def lock_taken(paths: SessionPaths, *, by_others_only: bool = False) -> bool:
    """Is the session's run lock taken now (``by_others_only``: by a holder other than this process)?

    A session whose folder does not exist has a free lock; nothing is created for it.
    """
    key = str(paths.hold_file)
    if key in _held_here:
        return not by_others_only
    if not paths.kernel.is_dir():
        return False
    probe = FileLock(key, thread_local=False, mode=0o600)
    try:
        probe.acquire(timeout=0)
    except Timeout:
        return True
    probe.release()
    return False


class RunLock:
    """The run lock of one session (see the module docstring)."""

    def __init__(self, paths: SessionPaths) -> None:
        self.paths = paths
        self._lock = FileLock(str(paths.hold_file), thread_local=False, mode=0o600)
        self._busy = False  # not re-entrant: a second task of this object waits as well
        self._ensured = False

    @property
    def held(self) -> bool:
        return self._busy

    def try_acquire(self, front_end: str, task: str = "a run started") -> bool:
        """Take the lock if it is free, and say who holds it now."""
        if self._busy:
            return False
        if not self._ensured:
            self.paths.ensure()
            self._ensured = True
        try:
            self._lock.acquire(timeout=0)
        except Timeout:
            return False
        self._busy = True
        key = str(self.paths.hold_file)
        _held_here[key] = _held_here.get(key, 0) + 1
        pid = os.getpid()
        holder = {"pid": pid, "pid_start": process_start_time(pid), "since": time.time(), "front_end": front_end, "task": task}
        try:
            atomic.write_text(self.paths.holder_file, json.dumps(holder), mode=0o600)
        except OSError:  # only the label of the lock: waiters then say "another run"
            pass
        return True

    async def acquire(
        self,
        front_end: str,
        timeout: float,
        *,
        task: str = "a run started",
        on_wait: Callable[[Holder | None], None] | None = None,
    ) -> None:
        """Take the lock, waiting up to ``timeout`` seconds; ``on_wait(holder)`` is told whom it waits for
        (again when that changes). ``SessionBusy`` past the timeout, naming the holder."""
        deadline = time.monotonic() + max(timeout, 0.0)
        told: tuple[Holder | None] | None = None
        while not self.try_acquire(front_end, task):
            holder = read_holder(self.paths)
            if on_wait is not None and (told is None or told[0] != holder):
                told = (holder,)
                on_wait(holder)
            if time.monotonic() >= deadline:
                raise SessionBusy(self.paths.session_id, holder.describe() if holder else "another run", timeout)
            await asyncio.sleep(POLL)

    def release(self) -> None:
        if not self._busy:
            return
        self._busy = False
        key = str(self.paths.hold_file)
        count = _held_here.get(key, 0) - 1
        if count > 0:
            _held_here[key] = count
        else:
            _held_here.pop(key, None)
        data = read_json(self.paths.holder_file) or {}
        if data.get("pid") == os.getpid():  # the label goes first: nobody is named for a free lock
            with contextlib.suppress(OSError):
                self.paths.holder_file.unlink()
        self._lock.release(force=True)

    @contextlib.asynccontextmanager
    async def hold(
        self,
        front_end: str,
        timeout: float,
        *,
        task: str = "a run started",
        on_wait: Callable[[Holder | None], None] | None = None,
    ) -> AsyncIterator[None]:
        await self.acquire(front_end, timeout, task=task, on_wait=on_wait)
        try:
            yield
        finally:
            self.release()


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
