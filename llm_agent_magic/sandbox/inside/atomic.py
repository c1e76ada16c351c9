"""Atomic writes for the files that run inside the sandbox: a temp file beside the target, then a rename.

This is the sandbox side's copy of ``llm_agent_magic/atomic.py``: files loaded by path cannot import
the package (see ``__init__.py``). It names files by their absolute path, which the sandbox's audit
hook can judge, and hands the writer a path, since pyarrow, numpy and matplotlib write to one.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from typing import Any


def temp_beside(path: str | os.PathLike[str], write: Callable[[str], Any]) -> str:
    """Run ``write(tmp)`` on a new temp file beside ``path``; return its name, for the caller to rename into place."""
    folder, name = os.path.split(os.fspath(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=folder or ".")
    os.close(fd)
    try:
        write(tmp)
    except BaseException:
        discard(tmp)
        raise
    return tmp


def write_atomic(path: str | os.PathLike[str], write: Callable[[str], Any]) -> None:
    """Replace ``path`` with what ``write(tmp)`` writes into a temp file beside it."""
    tmp = temp_beside(path, write)
    try:
        os.replace(tmp, path)
    except BaseException:
        discard(tmp)
        raise


def discard(path: str | os.PathLike[str]) -> None:
    """Remove ``path`` if it is there (a temp file not needed after all, a snapshot replaced)."""
    try:
        os.unlink(path)
    except OSError:
        pass
