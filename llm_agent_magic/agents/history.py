"""``Conversations``: what front ends read and change of sessions' records (the store), through the service.

Sessions (list, find, create, rename, delete), their messages, their runs and each run's stored events, and
the markdown export. Every call opens the store of the data root in force and closes it again, so a
front end holds no store and a change of ``PathsConfig.data_root`` applies at the next call. The calls block
(SQLite): a server runs them with ``in_thread``, off its loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

from ..config import PathsConfig
from ..exceptions import SessionNotFound
from ..store import ConversationStore, Message, Run, Session

__all__ = ["Conversations", "Message", "Run", "Session", "in_thread"]

T = TypeVar("T")


async def in_thread(work: Callable[[], T]) -> T:
    """``work()`` in a worker thread: SQLite (or a file) never blocks the caller's loop."""
    return await asyncio.get_running_loop().run_in_executor(None, work)


class Conversations:
    """The records of the sessions under the data root ``paths()`` names (read again at every call)."""

    def __init__(self, paths: Callable[[], PathsConfig]):
        self._paths = paths

    def _store(self) -> ConversationStore:
        # Opening the store is where a corrupt file shows (StoreCorrupted, with what to do), not a traceback.
        return ConversationStore.from_config(self._paths())

    def sessions(self) -> list[Session]:
        """Every session, most recently updated first."""
        with self._store() as store:
            return store.list_sessions()

    def get(self, session_id: str) -> Session:
        """``SessionNotFound`` when there is none."""
        with self._store() as store:
            return store.get_session(session_id)

    def create(self, session_id: str, title: str = "") -> tuple[Session, bool]:
        """The session of that id, created now (``True``) unless it exists (``False``: left as it is)."""
        with self._store() as store:
            try:
                return store.get_session(session_id), False
            except SessionNotFound:
                return store.create_session(session_id, title), True

    def ensure(self, session_id: str) -> Session:
        """The session of that id, created empty if there is none."""
        with self._store() as store:
            return store.ensure_session(session_id)

    def rename(self, session_id: str, title: str) -> Session:
        with self._store() as store:
            store.rename_session(session_id, title)
            return store.get_session(session_id)

    def delete(self, session_id: str) -> None:
        """Its messages, runs and events; ``SessionNotFound`` when there is none. (Closing an open session is
        ``SessionManager.close``'s.)"""
        with self._store() as store:
            store.delete_session(session_id)

    def messages(self, session_id: str, limit: int | None = None) -> list[Message]:
        """The last ``limit`` messages (all: ``None``), oldest first."""
        with self._store() as store:
            return store.recent_messages(session_id, limit)

    def seed(self, session_id: str, turns: list[tuple[str, str]]) -> None:
        """Earlier turns ``(role, text)`` a client brings (an OpenAI-style conversation) as the session's history."""
        with self._store() as store:
            store.ensure_session(session_id)
            for role, text in turns:
                store.add_message(session_id, role, text)

    def export(self, session_id: str) -> str:
        """The conversation as markdown."""
        with self._store() as store:
            return store.export_markdown(session_id)

    def run(self, run_id: str) -> Run:
        """``RunNotFound`` when there is none."""
        with self._store() as store:
            return store.get_run(run_id)

    def run_with_events(self, run_id: str) -> tuple[Run, list[dict[str, Any]]]:
        """The run and its stored events in order (as dicts, the wire format); ``RunNotFound``."""
        with self._store() as store:
            return store.get_run(run_id), store.run_events(run_id)
