"""Process-level plumbing for sandbox kernels: a private event loop, the session lock, the state file."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import functools
import json
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable, Coroutine, TypeVar

T = TypeVar("T")


class SandboxLoop:
    """One event loop thread per process that owns every sandbox kernel's sockets and processes.

    Why not the caller's loop: the magic runs inside the user's kernel, whose loop is already running
    (so ``asyncio.run`` is impossible); zmq sockets are tied to the loop that created them; and
    bubblewrap's ``--die-with-parent`` fires when the *thread* that launched it exits, so the launching
    thread must live as long as the kernel.
    """

    _instance: "SandboxLoop | None" = None
    _guard = threading.Lock()

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, name="llm-agent-sandbox-loop", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    @classmethod
    def get(cls) -> "SandboxLoop":
        with cls._guard:
            # A forked child inherits the object but not the thread: it needs its own.
            if cls._instance is None or cls._instance.pid != os.getpid():
                cls._instance = cls()
            return cls._instance

    async def call(self, coro: Coroutine[Any, Any, T]) -> T:
        """Await ``coro`` on the sandbox loop from any event loop."""
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self.loop:
            return await coro
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self.loop))

    def call_sync(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the sandbox loop and block until it is done (works inside a running loop too)."""
        if threading.current_thread() is self.thread:
            coro.close()
            raise RuntimeError("sandbox sync methods cannot be called from the sandbox loop; await the async_* ones")
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result()
        except KeyboardInterrupt:
            # The user interrupted their own kernel: stop the sandbox work too (execute interrupts the sandbox).
            future.cancel()
            raise


def run_sync(method: Callable[..., Awaitable[T]]) -> Callable[..., T]:
    """The blocking twin of an ``async_*`` method of an object with a ``_loop: SandboxLoop``."""

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> T:
        return self._loop.call_sync(method(self, *args, **kwargs))

    wrapper.__doc__ = f"Blocking version of ``{method.__name__}``." + ("\n\n" + method.__doc__ if method.__doc__ else "")
    return wrapper


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


def process_start_time(pid: int) -> str:
    """The kernel's boot-relative start time, so a reused pid is not mistaken for our kernel."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return ""
    return fields[19] if fields[0] != "Z" else "zombie"


def pid_alive(pid: int | None, start_time: str = "") -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    now = process_start_time(pid)
    if now == "zombie":
        return False
    return not start_time or not now or now == start_time


def kill_pid(pid: int | None) -> None:
    if pid:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def write_json_atomic(path: Path, data: dict[str, Any], mode: int = 0o600) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=1)
    os.replace(tmp, path)


def rotate_log(path: Path, keep: int = 3, max_bytes: int = 1 << 20) -> None:
    """Move ``path`` to ``path.1`` (``.1`` to ``.2``, ...; ``keep`` of them), each cut to its last ``max_bytes``.

    A relaunched kernel starts a fresh log; the one before it, which says why the old kernel died, stays.
    """
    if not path.exists():
        return
    for n in range(keep - 1, 0, -1):
        older = path.with_name(f"{path.name}.{n}")
        if older.exists():
            os.replace(older, path.with_name(f"{path.name}.{n + 1}"))
    target = path.with_name(f"{path.name}.1")
    try:
        with open(path, "rb") as src:
            size = os.fstat(src.fileno()).st_size
            src.seek(max(0, size - max_bytes))
            data = src.read(max_bytes)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as dst:
            if size > max_bytes:
                dst.write(f"[... the first {size - max_bytes} bytes of this log were dropped ...]\n".encode())
            dst.write(data)
        path.unlink()
    except OSError:
        pass  # a log that cannot be kept must not stop the kernel from starting


def log_tail(path: Path, lines: int = 15) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 8192))
            text = fh.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])
