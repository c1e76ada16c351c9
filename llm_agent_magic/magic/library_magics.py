"""``%agent learn / forget / collections``: read the words (``learn_grammar``), ask the session service's
``Library`` (``agents/library.py``), return what to show."""

from __future__ import annotations

import time
from typing import Any

from IPython.core.error import UsageError

from ..agents.library import table_rows
from ..exceptions import BadRequest, LLMAgentError
from ..learn_grammar import parse_library_words
from .render import table_data
from .sessions import ShellSessions


def library_command(sessions: ShellSessions, verb: str, words: list[str]) -> list[str]:
    """``%agent learn ...`` or ``%agent forget ...`` carried out; the lines that say what it did."""
    try:
        command = parse_library_words(verb, words, prefix="%agent ")
    except BadRequest as exc:  # a UsageError in a notebook, as every other mistake in %agent
        raise UsageError(str(exc)) from None
    bar = ProgressLine("embedding")
    try:
        return sessions.loop.call(sessions.manager.library.carry_out(command, progress=bar.show)).lines()
    except LLMAgentError as exc:
        raise UsageError(f"%agent {verb}: {exc}") from None
    finally:
        bar.close()


class ProgressLine:
    """A progress bar in the cell's output while ``learn`` embeds: one display, updated at most 5 times a second."""

    def __init__(self, what: str, every: float = 0.2):
        self.what = what
        self.every = every
        self._handle: Any = None
        self._shown = 0.0
        self._last = (0, 0)

    @staticmethod
    def text(what: str, done: int, total: int) -> str:
        share = done / total if total else 1.0
        filled = int(round(share * 30))
        return f"{what}: [{'#' * filled}{'.' * (30 - filled)}] {done}/{total} chunks ({share:.0%})"

    def show(self, done: int, total: int) -> None:
        from IPython.display import display

        self._last = (done, total)
        now = time.monotonic()
        if self._handle is not None and now - self._shown < self.every and done < total:
            return
        self._shown = now
        data = {"text/plain": self.text(self.what, done, total)}
        if self._handle is None:
            self._handle = display(data, raw=True, display_id=True)
        else:
            self._handle.update(data, raw=True)

    def close(self) -> None:
        if self._handle is not None:  # the last figures, even when the last call came within the interval
            self._handle.update({"text/plain": self.text(self.what, *self._last)}, raw=True)


def collections_table(sessions: ShellSessions) -> dict[str, Any]:
    header, rows = table_rows(sessions.manager.library.collections())
    return table_data(header, rows, "No collections yet: `%agent learn PATH` makes one.")
