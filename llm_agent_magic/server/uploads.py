"""Names of files clients put into a session's workspace, and where that workspace is."""

from __future__ import annotations

import unicodedata
from pathlib import Path

from ..config import PathsConfig
from ..exceptions import BadName
from ..sandbox.inside.confined import exists_confined
from ..sandbox.paths import SessionPaths

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
            raise BadName(f"{name} is not in this session's workspace; upload it first "
                          "(POST /llm-agent/api/sessions/<id>/files).")
        found.append(str(folder / name))
    return found
