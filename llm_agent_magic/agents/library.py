"""``Library``: the retrieval collections as every front end asks for them (learn, forget, list, show).

The magic, the CLI and the server call this, never ``tools/rag/library.py`` itself: the settings in force are
resolved once (``SessionManager.config``, or a command line's resolved config) and ``learn`` makes the model
client that embeds from them, so no front end builds an ``LLMClient``. What each call returns words itself
(``lines()``) and serializes itself (``to_dict()``). ``carry_out`` runs a command in the one grammar
(``learn_grammar.py``) every front end reads its user's words with.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterable
from pathlib import Path

from traitlets.config import Config

from ..config import LLMConfig, PathsConfig, ToolsConfig
from ..learn_grammar import LibraryCommand
from ..llm import LLMClient
from ..tools.rag.library import (
    COLUMNS,
    CollectionInfo,
    ForgetResult,
    LearnResult,
    collection_info,
    forget,
    learn,
    list_collections,
)

__all__ = ["COLUMNS", "CollectionInfo", "ForgetResult", "LearnResult", "Library"]

Progress = Callable[[int, int], None]


class Library:
    """The collections under the data root of the settings ``config()`` returns (read again at every call)."""

    def __init__(self, config: Callable[[], Config]):
        self._config = config

    def tools(self) -> ToolsConfig:
        return ToolsConfig(config=self._config())

    def paths(self) -> PathsConfig:
        return PathsConfig(config=self._config())

    def default_collection(self) -> str:
        return self.tools().rag_learn_collection

    async def learn(
        self,
        targets: Iterable[str | os.PathLike[str]],
        *,
        collection: str = "",
        reembed: bool = False,
        within: Path | None = None,
        progress: Progress | None = None,
    ) -> LearnResult:
        """Embed new and changed files of ``targets`` into ``collection`` (``within``: every file opened from that
        folder down, no link followed), with a model client of the settings in force, closed afterwards."""
        cfg = self._config()
        paths, tools = PathsConfig(config=cfg), ToolsConfig(config=cfg)
        async with LLMClient(LLMConfig(config=cfg), paths=paths) as llm:
            return await learn(
                targets, llm, collection=collection, tools=tools, paths=paths, reembed=reembed, within=within, progress=progress
            )

    async def learn_in_thread(
        self, targets: list[str], *, collection: str = "", reembed: bool = False, within: Path | None = None
    ) -> LearnResult:
        """``learn`` in a worker thread with its own event loop: embedding a large folder never blocks the
        caller's loop (a server's)."""
        work = self.learn(targets, collection=collection, reembed=reembed, within=within)
        return await asyncio.to_thread(asyncio.run, work)

    async def carry_out(
        self, command: LibraryCommand, *, within: Path | None = None, progress: Progress | None = None
    ) -> LearnResult | ForgetResult:
        """``learn`` or ``forget`` as ``command`` says (a forget runs in a worker thread: it reads the disk)."""
        if command.verb == "learn":
            return await self.learn(
                command.paths, collection=command.collection, reembed=command.reembed, within=within, progress=progress
            )
        return await asyncio.to_thread(self.forget, command.paths, collection=command.collection, everything=command.everything)

    def forget(
        self, targets: Iterable[str | os.PathLike[str]], *, collection: str = "", everything: bool = False
    ) -> ForgetResult:
        return forget(targets, collection=collection, everything=everything, tools=self.tools(), paths=self.paths())

    def collections(self) -> list[CollectionInfo]:
        return list_collections(self.paths())

    def collection(self, name: str) -> CollectionInfo:
        """``CollectionNotFound`` when there is none of that name."""
        return collection_info(name, self.paths())


def table_rows(found: list[CollectionInfo]) -> tuple[list[str], list[list[str]]]:
    """The header and rows every front end shows collections in."""
    return list(COLUMNS), [info.row() for info in found]
