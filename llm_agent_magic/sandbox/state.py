"""The small JSON files a session's processes leave in ``kernel/`` (the kernel's ``state.json``, the
holder's ``holder.json``; both written with ``llm_agent_magic.atomic``) and the pid helpers that judge them.

A pid counts as the recorded process only while its start time matches the one written beside it, so
a pid the system has since given to another process is not mistaken for a kernel or its holder.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any


def _stat_fields(pid: int) -> list[str]:
    """The fields of ``/proc/<pid>/stat`` after the command's name (its state first), or none."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return []


def process_start_time(pid: int) -> str:
    """The kernel's boot-relative start time, so a reused pid is not mistaken for our kernel."""
    fields = _stat_fields(pid)
    if not fields:
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


def _command(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return fh.read().replace(b"\0", b" ").decode("utf-8", "replace").strip()[:200]
    except OSError:
        return ""


def describe_process(pid: int) -> str:
    """``pid 12 (python -m ipykernel_launcher ...), started by pid 10 (llm-agent run a.ipynb)``"""
    text = f"pid {pid}" + (f" ({_command(pid)})" if _command(pid) else "")
    try:
        ppid = int(_stat_fields(pid)[1])
    except (ValueError, IndexError):
        return text
    parent = _command(ppid)
    return text + (f", started by pid {ppid} ({parent})" if parent else "")


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        data: dict[str, Any] | None = json.loads(path.read_text(encoding="utf-8"))
        return data
    except (OSError, ValueError):
        return None
