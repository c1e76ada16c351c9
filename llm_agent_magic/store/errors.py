"""Errors of the conversation store. Each message names the file or id and says what to do next."""

from __future__ import annotations

from pathlib import Path

from llm_agent_magic.exceptions import LLMAgentError

_LIST_HINT = "List the sessions with `%agent sessions`, `llm-agent sessions` or `ConversationStore.list_sessions()`."


class StoreError(LLMAgentError):
    """The conversation store could not do what was asked."""


class _NotFound(StoreError, KeyError):
    # KeyError.__str__ quotes its argument; these messages are sentences.
    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class SessionNotFound(_NotFound):
    def __init__(self, session_id: str, path: str | Path):
        self.session_id = session_id
        super().__init__(f"No conversation session {session_id!r} in {path}. {_LIST_HINT}")


class SessionExists(StoreError):
    def __init__(self, session_id: str, path: str | Path):
        self.session_id = session_id
        super().__init__(
            f"A session {session_id!r} already exists in {path}. Use ensure_session() to reuse it, "
            f"or pick another id (create_session() without an id makes a fresh one)."
        )


class RunNotFound(_NotFound):
    def __init__(self, run_id: str, path: str | Path):
        self.run_id = run_id
        super().__init__(
            f"No run {run_id!r} in {path}. Runs are listed per session with `ConversationStore.runs(session_id)`."
        )


class StoreCorrupted(StoreError):
    """The file is not an SQLite database, or SQLite found it damaged. Never deleted for the user."""

    def __init__(self, path: str | Path, detail: str):
        self.path = str(path)
        super().__init__(
            f"The conversation store {path} is not a readable SQLite database ({detail}). Nothing was changed. "
            f"Move it aside (e.g. `mv {path} {path}.broken`) and a new, empty store is created on the next start; "
            f"the old file may still be recoverable with `sqlite3 {path}.broken .recover`."
        )


class StoreVersionError(StoreError):
    def __init__(self, path: str | Path, found: int, supported: int):
        super().__init__(
            f"The conversation store {path} has schema version {found}, but this llm-agent-magic understands up to "
            f"{supported}. It was written by a newer release: upgrade llm-agent-magic "
            f"(`pip install -U llm-agent-magic`), or point PathsConfig.data_root elsewhere."
        )
