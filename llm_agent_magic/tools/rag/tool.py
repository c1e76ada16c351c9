"""``rag_search``: answer from the session's documents, with the file each passage came from.

The collection is the session's files (attached files are copied into its workspace)
plus the folders in ``ToolsConfig.rag_folders``. Every call brings the index up to date
first, which costs a hash per changed file and embeddings only for new or changed ones.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

from ...config import PathsConfig, ToolsConfig
from ...sandbox.inside.confined import list_confined
from ..base import Tool, ToolContext, ToolInput, ToolResult
from .index import DocumentIndex, SearchHit, collection_folder
from .loaders import SUPPORTED_SUFFIXES, is_document

#: Most files one collection takes from a folder tree (a home folder given by mistake must not hang the run).
MAX_FILES = 500
PASSAGE_CHARS = 1200
NO_DOCUMENTS = (
    "There are no documents to search: attach files ({types}) to the request, or list folders in "
    "ToolsConfig.rag_folders. Answer without rag_search."
)


class RagSearchTool(Tool):
    name = "rag_search"
    description = (
        "Searches the session's documents (attached or configured text, markdown, CSV, PDF, Word and HTML files) and "
        "returns the passages most relevant to a question, each with its file name. Cite the file names you use."
    )
    input = ToolInput("question", "the question, or keywords, to look up in the documents")

    def __init__(self, config: ToolsConfig | None = None, *, paths: PathsConfig | None = None):
        self.config = config or ToolsConfig()
        self.paths = paths

    async def run(self, action_input: str, ctx: ToolContext) -> ToolResult:
        question = action_input.strip() or ctx.request
        sources, notes = self.sources(ctx)
        if not sources:
            types = ", ".join(sorted(s.lstrip(".") for s in SUPPORTED_SUFFIXES))
            return ToolResult(NO_DOCUMENTS.format(types=types), success=False, data={"documents": 0})
        index = self.index_for(ctx)
        report = await index.update(sources)
        notes += report.notes()
        note_text = ("\nNot searched:\n" + "\n".join(f"- {n}" for n in notes)) if notes else ""
        if not len(index):
            return ToolResult(
                f"None of the {len(sources)} document(s) held searchable text.{note_text}",
                success=False,
                data={"documents": len(sources), "skipped": report.skipped},
            )
        hits = await index.search(question, self.config.rag_top_k)
        text = self._render(question, hits, len(index.sources) - len(report.empty)) + note_text
        return ToolResult(
            text,
            data={
                "hits": [{"source": h.source, "position": h.position, "score": h.score} for h in hits],
                "skipped": report.skipped,
                "embedded_chunks": report.embedded_chunks,
            },
        )

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
        )

    def sources(self, ctx: ToolContext) -> tuple[list[Path], list[str]]:
        """Documents in the session's workspace and the configured folders, and notes on what was left out.

        The workspace is the sandbox's: it is listed without following links, and what is not a regular
        file there (a link to a dotfile or to /proc/self/environ, a FIFO) is named in the notes, not read.
        """
        found: dict[Path, None] = {}
        notes: list[str] = []
        workspace = self._workspace(ctx)
        if workspace is not None:
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
                    return list(found), notes
                else:
                    found.setdefault(workspace / entry.relpath, None)
        folders: list[Path] = []
        for folder in self.config.rag_folders:
            path = Path(folder).expanduser()
            if path.is_dir():
                folders.append(path)
            else:
                notes.append(f"{folder}: configured in ToolsConfig.rag_folders but not a folder")
        for root in folders:
            for path in _documents_under(root):
                if len(found) >= MAX_FILES:
                    notes.append(f"only the first {MAX_FILES} documents are searched")
                    return list(found), notes
                found.setdefault(path.resolve(), None)
        return list(found), notes

    @staticmethod
    def _render(question: str, hits: list[SearchHit], documents: int) -> str:
        lines = [f'Passages from {documents} document(s) for "{question}", best first. Cite them by file name.']
        for n, hit in enumerate(hits, 1):
            passage = hit.text if len(hit.text) <= PASSAGE_CHARS else hit.text[:PASSAGE_CHARS] + " ..."
            lines.append(f"[{n}] {hit.name} (from character {hit.position}, similarity {hit.score:.2f}):")
            lines.append(re.sub(r"(?m)^", "    ", passage))
        return "\n".join(lines)


def _documents_under(root: Path) -> Iterator[Path]:
    """Document files below ``root`` in name order, skipping dot folders and files (caches, checkpoints)."""
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != "__pycache__")
        for name in sorted(files):
            path = Path(folder) / name
            if not name.startswith(".") and is_document(path):
                yield path
