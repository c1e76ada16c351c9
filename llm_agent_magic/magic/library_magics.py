"""``%agent learn / forget / collections``: read the words, call ``tools/rag/library.py``, return what to show."""

from __future__ import annotations

import argparse
import time
from typing import Any

from IPython.core.error import UsageError

from ..config import ToolsConfig
from ..exceptions import LLMAgentError
from .render import table_data
from .sessions import ShellSessions


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # a UsageError, not SystemExit, in a notebook
        raise UsageError(f"{message}\n{self.format_usage().strip()}")


def _parser(command: str) -> _Parser:
    parser = _Parser(prog=f"%agent {command}", add_help=False)
    parser.add_argument("paths", nargs="*", metavar="PATH")
    parser.add_argument("--collection", default="", help="collection name (default: ToolsConfig.rag_learn_collection)")
    if command == "learn":
        parser.add_argument("--reembed", action="store_true", help="embed the whole collection again")
    else:
        parser.add_argument("--all", action="store_true", dest="everything", help="delete the whole collection")
    return parser


def learn_command(sessions: ShellSessions, words: list[str]) -> list[str]:
    from ..llm import LLMClient
    from ..tools.rag.library import learn

    args = _parser("learn").parse_args(words)
    llm_config, _, _, paths = sessions.effective()
    tools = ToolsConfig(config=sessions.config())
    bar = ProgressLine("embedding")

    async def go() -> Any:
        async with LLMClient(llm_config, paths=paths) as llm:
            return await learn(args.paths, llm, collection=args.collection, tools=tools, paths=paths,
                               reembed=args.reembed, progress=bar.show)

    try:
        return list(sessions.loop.call(go()).lines())
    except LLMAgentError as exc:
        raise UsageError(f"%agent learn: {exc}") from None
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


def forget_command(sessions: ShellSessions, words: list[str]) -> list[str]:
    from ..tools.rag.library import forget

    args = _parser("forget").parse_args(words)
    _, _, _, paths = sessions.effective()
    try:
        result = forget(args.paths, collection=args.collection, everything=args.everything,
                        tools=ToolsConfig(config=sessions.config()), paths=paths)
    except LLMAgentError as exc:
        raise UsageError(f"%agent forget: {exc}") from None
    return result.lines()


def collections_table(sessions: ShellSessions) -> dict[str, Any]:
    from ..tools.rag.library import COLUMNS, list_collections

    _, _, _, paths = sessions.effective()
    rows = [info.row() for info in list_collections(paths)]
    return table_data(list(COLUMNS), rows, "No collections yet: `%agent learn PATH` makes one.")
