"""``rag_search``: answer from the session's documents and the learned collections, with citations.

The session's own index holds its files (attached files are copied into its workspace) plus the
folders in ``ToolsConfig.rag_folders``; every call brings it up to date first, which costs a hash
per changed file and embeddings only for new or changed ones. Collections filled by ``learn``
(``library.py``) are searched as they are. Each passage says its file, page or cell and character
range, which the answer cites.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from ...config import PathsConfig, ToolsConfig
from ...exceptions import EmbeddingModelMismatch
from ...sandbox.inside.confined import list_confined
from ..base import Tool, ToolContext, ToolInput, ToolResult
from .index import HASHES_FILE, DocumentIndex, SearchHit, Source, collection_folder
from .library import folder_sources, list_collections, open_collection
from .loaders import SUPPORTED_SUFFIXES, TABLE_TEXT_SUFFIXES, is_document
from .vectors import Approximate

#: Most files one collection takes from a folder tree (a home folder given by mistake must not hang the run).
MAX_FILES = 500
PASSAGE_CHARS = 1200
#: Learned collections read in this process, by folder: (mtime of their record, the index).
_LOADED: dict[str, tuple[int, DocumentIndex]] = {}
NO_DOCUMENTS = (
    "There are no documents to search: attach files ({types}) to the request, list folders in "
    "ToolsConfig.rag_folders, or learn some (`%agent learn PATH`). Answer without rag_search."
)


class RagSearchTool(Tool):
    name = "rag_search"
    description = (
        "Searches the session's documents (attached or configured text, markdown, PDF, Word and HTML files) and the "
        "learned collections, and returns the passages most relevant to a question (by meaning and by exact "
        "words, names and codes), each with its file, page or cell and character range. Cite the passages you use."
    )
    input = ToolInput("question", "the question, or keywords, to look up in the documents")

    def __init__(self, config: ToolsConfig | None = None, *, paths: PathsConfig | None = None):
        self.config = config or ToolsConfig()
        self.paths = paths

    def offered(self, ctx: ToolContext) -> bool:
        """Offered when there is something to search besides tables: a learned collection, a configured folder,
        or a document (not a CSV or TSV, which python_coder reads) in the working folder, where attached files
        go, keeping their folders (``data/docs/refunds.md``): the same bounded, link-free walk ``sources`` makes."""
        if self.config.rag_folders:
            return True
        paths = self.paths or getattr(ctx.llm, "paths", None) or PathsConfig()
        if any(info.chunks for info in list_collections(paths, kind="learned")):
            return True
        workspace = self._workspace(ctx)
        if workspace is None:
            return False
        try:
            entries = list_confined(workspace, recursive=True)
        except OSError:
            return False
        return any(
            not e.refused
            and "__pycache__" not in e.relpath.split("/")
            and is_document(Path(e.name))
            and Path(e.name).suffix.lower() not in TABLE_TEXT_SUFFIXES
            for e in entries
        )

    async def run(self, action_input: str, ctx: ToolContext) -> ToolResult:
        question = action_input.strip() or ctx.request
        sources, notes = self.sources(ctx)
        learned = self.learned(ctx)
        if not sources and not learned:
            types = ", ".join(sorted(s.lstrip(".") for s in SUPPORTED_SUFFIXES))
            return ToolResult(NO_DOCUMENTS.format(types=types), success=False, data={"documents": 0})
        indexes: list[DocumentIndex] = []
        skipped: dict[str, str] = {}
        embedded = 0
        if sources:
            own = self.index_for(ctx)
            report = await own.update(sources)
            notes += report.notes()
            skipped, embedded = report.skipped, report.embedded_chunks
            indexes.append(own)
        indexes += learned
        hits: list[SearchHit] = []
        documents = 0
        try:
            for index in indexes:
                try:
                    hits += await index.search(question, self.config.rag_top_k)
                except EmbeddingModelMismatch as exc:
                    notes.append(f"collection {index.name}: {exc}")
                    continue
                documents += sum(1 for s in index.sources if index.chunks_of(s))
        finally:
            for index in indexes:
                index.close()
        hits = sorted(hits, key=lambda h: ("identifier" in h.matched, h.score), reverse=True)[: self.config.rag_top_k]
        note_text = ("\nNot searched:\n" + "\n".join(f"- {n}" for n in notes)) if notes else ""
        if not hits:
            return ToolResult(
                f"None of the {len(sources)} document(s) held searchable text.{note_text}"
                if not learned
                else f'Nothing in the documents matched "{question}".{note_text}',
                success=False,
                data={"documents": len(sources), "skipped": skipped},
            )
        text = self._render(question, hits, documents) + note_text
        return ToolResult(
            text,
            data={
                "hits": [
                    {
                        "source": h.source,
                        "position": h.position,
                        "end": h.end,
                        "where": h.where,
                        "matched": list(h.matched),
                        "collection": h.collection,
                        "score": h.score,
                        "citation": h.citation(),
                    }
                    for h in hits
                ],
                "skipped": skipped,
                "embedded_chunks": embedded,
            },
        )

    def learned(self, ctx: ToolContext) -> list[DocumentIndex]:
        """The learned collections to search as well (``ToolsConfig.rag_search_collections``; empty: all)."""
        paths = self.paths or getattr(ctx.llm, "paths", None) or PathsConfig()
        wanted = set(self.config.rag_search_collections)
        found = []
        for info in list_collections(paths, kind="learned"):
            if not info.chunks or (wanted and info.name not in wanted):
                continue
            folder = collection_folder(info.name, paths)
            try:
                stamp = (folder / HASHES_FILE).stat().st_mtime_ns
            except OSError:
                continue
            cached = _LOADED.get(str(folder))
            # A large collection's vectors take a while to read: keep them while its record is unchanged.
            if cached is None or cached[0] != stamp:
                cached = _LOADED[str(folder)] = (stamp, open_collection(info.name, ctx.llm, self.config, paths))
            cached[1].llm = ctx.llm
            found.append(cached[1])
        return found

    @staticmethod
    def _workspace(ctx: ToolContext) -> Path | None:
        if ctx.sandbox is not None and ctx.sandbox.workspace:
            return Path(os.path.abspath(ctx.sandbox.workspace))
        return None

    def index_for(self, ctx: ToolContext) -> DocumentIndex:
        paths = self.paths or getattr(ctx.llm, "paths", None) or PathsConfig()
        name = self.config.rag_collection
        if not name:
            session = ctx.sandbox.session_id if ctx.sandbox is not None else ""
            name = f"session-{session}" if session else "default"
        return DocumentIndex(
            collection_folder(name, paths),
            ctx.llm,
            chunk_size=self.config.rag_chunk_size,
            chunk_overlap=self.config.rag_chunk_overlap,
            max_file_bytes=int(self.config.rag_max_file_mb * 1e6),
            confined_roots=[w for w in [self._workspace(ctx)] if w is not None],
            approximate_above=self.config.rag_approximate_above,
            approximate=Approximate.from_config(self.config),
            on_model_change="rebuild",  # nobody curates it: it is re-made from the session's files
        )

    def sources(self, ctx: ToolContext) -> tuple[list[Source], list[str]]:
        """Documents in the session's workspace and the configured folders, and notes on what was left out.

        The workspace is the sandbox's: it is listed without following links, and what is not a regular
        file there (a link to a dotfile or to /proc/self/environ, a FIFO) is named in the notes, not read.
        """
        found: dict[str, Source] = {}
        notes: list[str] = []
        workspace = self._workspace(ctx)
        full = workspace is not None and _add_workspace(workspace, found, notes)
        if not full:
            self._add_folders(found, notes)
        return list(found.values()), notes

    def _add_folders(self, found: dict[str, Source], notes: list[str]) -> None:
        """The documents of ``rag_folders`` into ``found`` (up to ``MAX_FILES`` in all); what was left out, in ``notes``."""
        folders: list[Path] = []
        for folder in self.config.rag_folders:
            path = Path(folder).expanduser()
            if path.is_dir():
                folders.append(path)
            else:
                notes.append(f"{folder}: configured in ToolsConfig.rag_folders but not a folder")
        for root in folders:
            try:
                listed, refused = folder_sources(root.resolve())  # the folder as configured; nothing below followed
            except OSError as exc:
                notes.append(f"{root}: could not be listed ({getattr(exc, 'reason', '') or exc})")
                continue
            notes += [f"{Path(p).name}: skipped, {why}" for p, why in refused.items() if is_document(Path(p))]
            for source in listed:
                if not is_document(source.path):
                    continue
                if len(found) >= MAX_FILES:
                    notes.append(f"only the first {MAX_FILES} documents are searched")
                    return
                found.setdefault(source.key, source)

    @staticmethod
    def _render(question: str, hits: list[SearchHit], documents: int) -> str:
        lines = [
            f'Passages from {documents} document(s) for "{question}", best first. Cite each passage you use by '
            f"its file and place as given, e.g. ({hits[0].citation()})."
        ]
        for n, hit in enumerate(hits, 1):
            passage = hit.text if len(hit.text) <= PASSAGE_CHARS else hit.text[:PASSAGE_CHARS] + " ..."
            found = f"matched: {', '.join(hit.matched)}"
            if hit.collection and not hit.collection.startswith("session-"):
                found += f"; collection {hit.collection}"
            lines.append(f"[{n}] {hit.citation()} ({found}):")
            lines.append(re.sub(r"(?m)^", "    ", passage))
        return "\n".join(lines)


def _add_workspace(workspace: Path, found: dict[str, Source], notes: list[str]) -> bool:
    """The documents of the sandbox's workspace into ``found``, listed without following links; True once
    ``MAX_FILES`` are found. What is not a regular file is named in ``notes``, not read."""
    try:
        entries = list_confined(workspace, recursive=True)
    except OSError as exc:
        entries = []
        notes.append(f"the working folder could not be listed ({getattr(exc, 'reason', '') or exc})")
    for entry in entries:
        if "__pycache__" in entry.relpath.split("/") or not is_document(Path(entry.name)):
            continue
        if entry.refused:
            notes.append(f"{entry.relpath}: skipped, {entry.refused}")
        elif len(found) >= MAX_FILES:
            notes.append(f"only the first {MAX_FILES} documents are searched")
            return True
        else:
            path = workspace / entry.relpath
            found.setdefault(str(path), Source(str(path), path, workspace, entry.relpath))
    return False
