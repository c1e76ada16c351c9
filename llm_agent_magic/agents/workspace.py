"""``Workspace``: files front ends put into a session's workspace (uploads), and files they read confined.

Names clients send are checked (one plain name: no folder, no leading dot, no control characters); files are
written atomically inside the workspace without following any link, and a run's attached files are the
workspace paths of files uploaded before. ``read_confined`` is the one confined read a front end needs of a
file a user points at (a dataset: regular file only, no link followed, bounded).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from pathlib import Path

from ..config import PathsConfig
from ..exceptions import BadName
from ..sandbox.inside.confined import exists_confined, read_confined, write_confined
from ..sandbox.paths import SessionPaths
from .history import Conversations

__all__ = ["MAX_NAME", "Workspace", "attached", "check_name", "read_confined", "workspace"]

MAX_NAME = 255


def check_name(name: str) -> str:
    """``name`` if it is one plain file name: no folders, no leading dot, no control characters."""
    if not isinstance(name, str) or not name:
        raise BadName("A file needs a name, e.g. sales.csv.")
    shown = ascii(name)
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") for ch in name):
        raise BadName(f"The file name {shown} holds control or invisible characters; use a plain name.")
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        raise BadName(f"The file name {shown} is an absolute path; send a plain name such as sales.csv.")
    if "/" in name or "\\" in name:
        raise BadName(f"The file name {shown} holds a folder; files go straight into the workspace, send a plain name.")
    if name in (".", "..") or name.startswith("."):
        raise BadName(f"The file name {shown} starts with a dot; hidden files and '..' are not accepted.")
    if len(name.encode()) > MAX_NAME:
        raise BadName(f"The file name is longer than {MAX_NAME} bytes; use a shorter one.")
    return name


def workspace(session_id: str, paths: PathsConfig) -> Path:
    return SessionPaths.for_session(session_id, paths).workspace


def attached(session_id: str, names: list[str], paths: PathsConfig) -> list[str]:
    """The workspace paths of files uploaded earlier, for a ``RunRequest``; ``BadName`` if one is missing."""
    folder = workspace(session_id, paths)
    found = []
    for name in names:
        check_name(name)
        if not folder.is_dir() or not exists_confined(folder, name):
            raise BadName(
                f"{name} is not in this session's workspace; upload it first (POST /llm-agent/api/sessions/<id>/files)."
            )
        found.append(str(folder / name))
    return found


class Workspace:
    """The workspaces of the sessions under the data root ``paths()`` names (read again at every call)."""

    def __init__(self, paths: Callable[[], PathsConfig]):
        self._paths = paths

    def folder(self, session_id: str) -> Path:
        return workspace(session_id, self._paths())

    def attached(self, session_id: str, names: list[str]) -> list[str]:
        """The workspace paths of files uploaded earlier, for a ``RunRequest``; ``BadName`` if one is missing."""
        return attached(session_id, names, self._paths())

    def upload(self, session_id: str, parts: list[tuple[str, bytes]]) -> list[dict[str, object]]:
        """Write each ``(name, body)`` into the session's workspace (the session is created if it is new);
        ``[{"name", "bytes"}]``. Names are checked first (``BadName``); ``OSError`` when one cannot be written
        (a link or a folder in its place: nothing is followed). Blocks: a server calls it in a thread."""
        for name, _ in parts:
            check_name(name)
        Conversations(self._paths).ensure(session_id)
        folder = self.folder(session_id)
        folder.mkdir(parents=True, exist_ok=True)
        return [{"name": name, "bytes": write_confined(folder, name, body)} for name, body in parts]
