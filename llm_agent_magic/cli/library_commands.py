"""``llm-agent learn / forget / collections``: the retrieval collections, from a shell.

Each command asks the session service's ``Library`` (``agents/library.py``) and prints what it returns, worded
as the magic and the panel word it; ``learn`` shows a progress bar (tqdm, on stderr) while it embeds. The words
come through traitlets (``--collection``, ``--reembed``, ``--all``, as every ``llm-agent`` option, config files
included) into the ``LibraryCommand`` the magic's and the panel's grammar (``learn_grammar.py``) makes.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

from traitlets import Bool, Unicode

from ..agents.library import CollectionInfo, Library, table_rows
from ..exceptions import LLMAgentError
from ..learn_grammar import LibraryCommand
from .app import LLMAgentApp


def library(app: LLMAgentApp) -> Library:
    """The retrieval collections under the command's settings (files < environment < its command line)."""
    return Library(lambda: app.config)


def _fail(app: LLMAgentApp, exc: Exception) -> None:
    print(f"{app.name}: {exc}", file=sys.stderr)
    app.exit(1)


class LearnApp(LLMAgentApp):
    name = "llm-agent learn"
    description = "Add files and folders to a retrieval collection (embeds only new or changed files)."
    examples = """
    llm-agent learn docs/ notes.md                  # into ToolsConfig.rag_learn_collection ('notes')
    llm-agent learn papers/ --collection papers
    llm-agent learn --reembed --collection papers   # again, with the embedding model configured now
    """
    collection = Unicode("", help="Collection to add to (default: ToolsConfig.rag_learn_collection).").tag(config=True)
    reembed = Bool(False, help="Embed the whole collection again with the current embedding model.").tag(config=True)
    as_json = Bool(False, help="Print the result as JSON.").tag(config=True)
    aliases = {**LLMAgentApp.aliases, "collection": "LearnApp.collection"}
    flags = {
        "reembed": ({"LearnApp": {"reembed": True}}, "Embed the whole collection again with the current model."),
        "json": ({"LearnApp": {"as_json": True}}, "Print the result as JSON."),
    }

    def start(self) -> None:
        from tqdm import tqdm

        bar: Any = None

        def progress(done: int, total: int) -> None:
            nonlocal bar
            if bar is None:
                bar = tqdm(total=total, unit="chunk", desc="embedding", file=sys.stderr)
            bar.update(done - bar.n)

        try:
            command = LibraryCommand("learn", self.extra_args, self.collection, reembed=self.reembed)
            result = asyncio.run(library(self).carry_out(command, progress=progress))
        except LLMAgentError as exc:
            _fail(self, exc)
            return
        finally:
            if bar is not None:
                bar.close()
        print(json.dumps(result.to_dict(), indent=1) if self.as_json else "\n".join(result.lines()))


class ForgetApp(LLMAgentApp):
    name = "llm-agent forget"
    description = "Remove files or folders from a retrieval collection, or delete it (--all)."
    examples = """
    llm-agent forget docs/old.md
    llm-agent forget --all --collection papers
    """
    collection = Unicode("", help="Collection to remove from (default: ToolsConfig.rag_learn_collection).").tag(config=True)
    everything = Bool(False, help="Delete the whole collection.").tag(config=True)
    aliases = {**LLMAgentApp.aliases, "collection": "ForgetApp.collection"}
    flags = {"all": ({"ForgetApp": {"everything": True}}, "Delete the whole collection.")}

    def start(self) -> None:
        try:
            command = LibraryCommand("forget", self.extra_args, self.collection, everything=self.everything)
            result = asyncio.run(library(self).carry_out(command))
        except LLMAgentError as exc:
            _fail(self, exc)
            return
        print("\n".join(result.lines()))


class CollectionsApp(LLMAgentApp):
    name = "llm-agent collections"
    description = "List the retrieval collections: files, chunks, embedding model, index, size on disk, last update."
    as_json = Bool(False, help="Print the collections as JSON.").tag(config=True)
    flags = {"json": ({"CollectionsApp": {"as_json": True}}, "Print the collections as JSON.")}

    def start(self) -> None:
        found = library(self).collections()
        if self.as_json:
            print(json.dumps([c.to_dict() for c in found], indent=1))
            return
        if not found:
            print(f"No collections yet in {self.paths_config.rag_dir}; `llm-agent learn PATH` makes one.")
            return
        print(render_table(found))


def render_table(found: list[CollectionInfo]) -> str:
    header, body = table_rows(found)
    rows = [header, *body]
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in rows)
