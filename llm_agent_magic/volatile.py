"""The clock prompts read, and the texts that vary with the clock, the machine or the folder.

A prompt may say what time it is and where files are; a recorded cassette must still replay
on another day, in another time zone, from another folder. Rather than guessing such text
back out of a prompt with patterns, whoever puts one into a prompt registers the exact text
here (``register``), and the cassette replaces every registered text with a fixed placeholder
before it hashes a request.

The clock is injectable for tests and reproducible runs: ``LLM_AGENT_NOW`` (ISO 8601, e.g.
``2026-11-28T09:15:00+00:00``) fixes "now", and the usual ``TZ`` sets the zone it is shown in.
Both travel to kernels and subprocesses through the environment.
"""

from __future__ import annotations

import datetime as _dt
import os
import sys
import tempfile
import threading
from pathlib import Path

from .exceptions import ConfigurationError

#: Environment variable that fixes the clock (ISO 8601; without an offset it is local time).
NOW_ENV = "LLM_AGENT_NOW"
#: What a registered clock text becomes in a fingerprint.
NOW = "<NOW>"
#: What a registered folder becomes in a fingerprint (one placeholder for all folders, so that
#: which folder is longer on which machine cannot change the text).
PATH = "<PATH>"

_lock = threading.Lock()
_texts: dict[str, str] = {}


def now() -> _dt.datetime:
    """The current time, aware, in the local zone; fixed by ``LLM_AGENT_NOW`` when set."""
    fixed = os.environ.get(NOW_ENV, "").strip()
    if not fixed:
        return _dt.datetime.now().astimezone()
    try:
        moment = _dt.datetime.fromisoformat(fixed)
    except ValueError:
        raise ConfigurationError(
            f"{NOW_ENV}={fixed!r} is not an ISO 8601 date and time; use e.g. 2026-11-28T09:15:00+00:00, "
            f"or unset it to use the real clock."
        ) from None
    return moment.astimezone()


def now_text() -> str:
    """The date, time, zone and weekday as prompts show them; registered as volatile."""
    text = now().strftime("%Y-%m-%d %H:%M %Z (%A)")
    register(text, NOW)
    return text


def register(text: str, placeholder: str) -> None:
    """Remember that ``text`` varies from run to run without changing the question."""
    if text and len(text) > 3:
        with _lock:
            _texts[text] = placeholder


def unregister(text: str) -> None:
    """Forget ``text`` (a large text registered for a while, such as a folder's listing)."""
    with _lock:
        _texts.pop(text, None)


def register_path(path: str | os.PathLike[str]) -> None:
    """A folder that may appear in prompts (data root, workspace, working folder, session folder)."""
    text = str(path).rstrip("/")
    if len(text) > 1:
        register(text, PATH)
        resolved = str(Path(text).resolve())
        if resolved != text:
            register(resolved, PATH)


def texts() -> dict[str, str]:
    """Every registered text and its placeholder, longest first (so a folder inside another goes whole)."""
    with _lock:
        items = dict(_texts)
    for folder in _machine_folders():
        items.setdefault(folder, PATH)
    return dict(sorted(items.items(), key=lambda kv: len(kv[0]), reverse=True))


def _machine_folders() -> list[str]:
    """Folders that differ between machines and show up in tracebacks: home, Python, temp, cwd."""
    folders = [os.path.expanduser("~"), sys.prefix, sys.base_prefix, tempfile.gettempdir()]
    try:
        folders.append(os.getcwd())
    except OSError:
        pass
    return [f.rstrip("/") for f in folders if f and len(f.rstrip("/")) > 3]


def scrub(text: str, items: dict[str, str] | None = None) -> str:
    """``text`` with every volatile text replaced by its placeholder; ``items``: ``texts()``, when a caller
    scrubs many strings at once and has read them already."""
    for literal, placeholder in (texts() if items is None else items).items():
        if literal in text:
            text = text.replace(literal, placeholder)
    return text
