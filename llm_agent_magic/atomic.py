"""Atomic file writes: a new temp file beside the target, renamed over it, so a reader sees the old
file or the new one, never half of one (and a crash leaves at most a ``.<name>.<random>.tmp``).

Every writer of this package outside the sandbox uses these. The files that run inside the sandbox
(``sandbox/inside/``) cannot import the package and keep their own copy, ``sandbox/inside/atomic.py``.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, Union

#: What to write: the content, or a function that writes it into the open temp file.
BytesData = Union[bytes, bytearray, memoryview, Callable[[IO[bytes]], Any]]
TextData = Union[str, Callable[[IO[str]], Any]]

# A new file of our own (never an existing one, never through a link planted at its name).
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


def write_bytes(path: str | os.PathLike[str], data: BytesData, *, mode: int = 0o600, fsync: bool = False) -> None:
    """Replace ``path`` with ``data`` atomically.

    ``mode`` is the new file's permissions before the umask (``0o666`` gives what a plain ``open`` would);
    ``fsync`` makes the content durable before the rename, for files that are costly to rebuild.
    """
    _replace(Path(path), "wb", None, data, mode, fsync)


def write_text(
    path: str | os.PathLike[str], text: TextData, *, mode: int = 0o600, fsync: bool = False, encoding: str = "utf-8"
) -> None:
    """Replace ``path`` with ``text`` atomically (see ``write_bytes``)."""
    _replace(Path(path), "w", encoding, text, mode, fsync)


def _replace(path: Path, how: str, encoding: str | None, data: Any, mode: int, fsync: bool) -> None:
    tmp = path.with_name(f".{path.name[:64]}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, _CREATE, mode)
    try:
        with os.fdopen(fd, how, encoding=encoding) as fh:
            if callable(data):
                data(fh)
            else:
                fh.write(data)
            if fsync:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
