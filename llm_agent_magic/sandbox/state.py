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
