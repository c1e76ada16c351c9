"""SQLite conversation store: sessions, messages, runs and their events, shared by every front end."""

from ..exceptions import RunNotFound, SessionExists, SessionNotFound, StoreCorrupted, StoreError, StoreVersionError
from .records import Message, Run, Session
from .schema import SCHEMA_VERSION, migrate
from .sqlite_store import ConversationStore

__all__ = [
    "SCHEMA_VERSION",
    "ConversationStore",
    "Message",
    "Run",
    "RunNotFound",
    "Session",
    "SessionExists",
    "SessionNotFound",
    "StoreCorrupted",
    "StoreError",
    "StoreVersionError",
    "migrate",
]
