"""The sandbox kernel's own log (``kernel/kernel.log``): rotated at each launch, its tail quoted when a kernel fails."""

from __future__ import annotations

import os
from pathlib import Path

from llm_agent_magic import atomic


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
        note = f"[... the first {size - max_bytes} bytes of this log were dropped ...]\n" if size > max_bytes else ""
        atomic.write_bytes(target, note.encode() + data)
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
