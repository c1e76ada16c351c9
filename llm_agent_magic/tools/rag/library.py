"""Collections people manage on purpose: ``learn``, ``forget``, ``list_collections``.

Every front end calls these and only renders what they return: ``%agent learn/forget/collections``,
``llm-agent learn/forget/collections`` and the server's ``/llm-agent/api/collections`` routes.
A learned collection lives in ``<data_root>/rag/<name>/`` like rag_search's own per-session index;
rag_search searches the learned ones too (``ToolsConfig.rag_search_collections``).

Learning a folder learns the documents under it (dot folders and files left out) and remembers the
folder: learning it again embeds only new and changed files, and forgets the ones deleted from it.
A folder's files are strangers' files (a cloned repository keeps links): the folder is walked and each
file read without following any link, only as a regular file with one name (``folder_sources``); what
is refused is reported as skipped, with why.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import shutil
import time
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...config import PathsConfig, ToolsConfig
from ...exceptions import CollectionError, CollectionNotFound
from ...sandbox.inside.confined import list_confined
from .index import HASHES_FILE, DocumentIndex, IndexReport, Progress, Source, collection_folder, safe_name
from .loaders import is_document
from .vectors import Approximate

if TYPE_CHECKING:
    from ...llm import LLMClient


@dataclass
class CollectionInfo:
    name: str
    #: "learned" (learn/forget) or "session" (rag_search's index of a session's files).
    kind: str
    files: int
    chunks: int
    embedding_model: str
    #: "flat" (exact) or "hnsw" (approximate, above ToolsConfig.rag_approximate_above chunks).
    index: str
    size_bytes: int
    updated_at: float | None
    roots: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def row(self) -> list[str]:
        """The cells of ``COLUMNS``, as text."""
        updated = time.strftime("%Y-%m-%d %H:%M", time.localtime(self.updated_at)) if self.updated_at else "-"
        return [
            self.name,
            self.kind,
            str(self.files),
            str(self.chunks),
            self.embedding_model,
            self.index,
            _size(self.size_bytes),
            updated,
        ]


COLUMNS = ("collection", "kind", "files", "chunks", "embedding model", "index", "size on disk", "updated")


def _size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GB"


@dataclass
class LearnResult:
    collection: str
    report: IndexReport
    files: int
    chunks: int
    #: What was left out before reading (files of other types, past the file limit).
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "collection": self.collection,
            "files": self.files,
            "chunks": self.chunks,
            "notes": self.notes,
            "skipped_notes": self.report.notes(),
            **self.report.to_dict(),
            "lines": self.lines(),
        }

    def lines(self) -> list[str]:
        r = self.report
        counts = f"{len(r.added)} added, {len(r.changed)} changed, {len(r.unchanged)} unchanged, {len(r.removed)} removed"
        head = (
            f"Collection {self.collection!r}: {self.files} file(s), {self.chunks} chunk(s) "
            f"({counts}; {r.embedded_chunks} chunk(s) embedded)."
        )
        return [head, *(f"  {n}" for n in self.notes + r.notes())]


@dataclass
class ForgetResult:
    collection: str
    removed: list[str]
    not_found: list[str]
    files: int
    chunks: int
    deleted: bool = False

    def to_dict(self) -> dict[str, Any]:
        """With ``lines``: the one wording of the result, for a front end to show as it is."""
        return {**asdict(self), "lines": self.lines()}

    def lines(self) -> list[str]:
        if self.deleted:
            return [f"Collection {self.collection!r} deleted ({len(self.removed)} file(s) forgotten)."]
        head = (
            f"Collection {self.collection!r}: {len(self.removed)} file(s) forgotten; "
            f"{self.files} file(s), {self.chunks} chunk(s) left."
        )
        return [head, *(f"  {p}: not in the collection" for p in self.not_found)]


@contextlib.contextmanager
def _lock_file(name: str, paths: PathsConfig) -> Iterator[int]:
    """The collection's lock file (beside its folder, so deleting the folder leaves it), open."""
    paths.rag_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(paths.rag_dir / f".{name}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        yield fd
    finally:
        os.close(fd)  # closing releases the lock


@contextlib.contextmanager
def _locked(name: str, paths: PathsConfig) -> Iterator[None]:
    """One writer per collection across processes (the magic, the CLI and the server may all learn)."""
    with _lock_file(name, paths) as fd:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield


@contextlib.asynccontextmanager
async def _locked_async(name: str, paths: PathsConfig) -> AsyncIterator[None]:
    with _lock_file(name, paths) as fd:
        await asyncio.to_thread(fcntl.flock, fd, fcntl.LOCK_EX)  # waiting for another writer blocks no loop
        yield


def open_collection(name: str, llm: LLMClient | None, tools: ToolsConfig, paths: PathsConfig) -> DocumentIndex:
    return DocumentIndex(
        collection_folder(name, paths),
        llm,
        chunk_size=tools.rag_chunk_size,
        chunk_overlap=tools.rag_chunk_overlap,
        max_file_bytes=int(tools.rag_max_file_mb * 1e6),
        approximate_above=tools.rag_approximate_above,
        approximate=Approximate.from_config(tools),
        kind="learned",
    )


def _existing_targets(targets: Iterable[str | os.PathLike[str]], reembed: bool) -> list[Path]:
    """The targets as absolute paths; a ``CollectionError`` saying what to do when there are none or one is missing."""
    chosen = [Path(os.path.abspath(Path(t).expanduser())) for t in targets]
    if not chosen and not reembed:
        raise CollectionError("Name the files or folders to learn (e.g. `learn docs/ --collection papers`).")
    missing = [str(t) for t in chosen if not t.exists()]
    if missing:
        raise CollectionError(f"Nothing to learn at {', '.join(missing)}: no such file or folder. Check the path.")
    return chosen


async def learn(
    targets: Iterable[str | os.PathLike[str]],
    llm: LLMClient,
    *,
    collection: str = "",
    tools: ToolsConfig | None = None,
    paths: PathsConfig | None = None,
    reembed: bool = False,
    progress: Progress | None = None,
    within: str | os.PathLike[str] | None = None,
) -> LearnResult:
    """Add files and folders to a collection (embedding only what is new or changed); with ``reembed``,
    embed the whole collection again with the current embedding model.

    ``within``: a folder every target must lie in (the server's root). Their files are then opened from
    it, walking down without following any link, so a folder swapped for a link after the caller checked
    the path leads nowhere outside it."""
    tools = tools or ToolsConfig()
    paths = paths or getattr(llm, "paths", None) or PathsConfig()
    name = safe_name(collection or tools.rag_learn_collection)
    chosen = await asyncio.to_thread(_existing_targets, targets, reembed)
    base = Path(await asyncio.to_thread(os.path.realpath, within)) if within is not None else None
    async with _locked_async(name, paths):
        return await _learn(name, chosen, llm, tools, paths, reembed, progress, base)


async def _learn(
    name: str,
    chosen: list[Path],
    llm: LLMClient,
    tools: ToolsConfig,
    paths: PathsConfig,
    reembed: bool,
    progress: Progress | None,
    within: Path | None,
) -> LearnResult:
    index = open_collection(name, llm, tools, paths)
    try:
        files, roots, refused, notes = await asyncio.to_thread(_expand, chosen, tools.rag_max_learn_files, within)
        known_roots = index.settings.get("roots", [])
        # Files learned earlier from a folder stay confined to it when they are read again.
        index.confined_roots = [Path(r) for r in dict.fromkeys([*known_roots, *(str(r) for r in roots)])]
        kept = [s for s in index.sources if not any(Path(s).is_relative_to(r) for r in roots)]
        wanted = list({source.key: source for source in [*(_kept(index, k) for k in kept), *files]}.values())
        report = await index.update(wanted, reembed=reembed, progress=progress, roots=[*known_roots, *(str(r) for r in roots)])
        report.skipped.update(refused)
        return LearnResult(name, report, len(index.sources), len(index), notes)
    finally:
        index.close()


def _kept(index: DocumentIndex, key: str) -> Source:
    """A file learned earlier, as it is read again: confined to its learned folder when it lies in one;
    a file named on its own is not resolved again (a link put in its place since is refused, not followed)."""
    source = index.source(key)
    return source if source.root is not None else Source(key, Path(key))


def forget(
    targets: Iterable[str | os.PathLike[str]],
    *,
    collection: str = "",
    everything: bool = False,
    tools: ToolsConfig | None = None,
    paths: PathsConfig | None = None,
) -> ForgetResult:
    """Remove files (or every file under a folder) from a collection; ``everything`` deletes the collection."""
    tools, paths = tools or ToolsConfig(), paths or PathsConfig()
    name = safe_name(collection or tools.rag_learn_collection)
    with _locked(name, paths):
        return _forget(name, targets, everything, tools, paths)


def _forget(
    name: str, targets: Iterable[str | os.PathLike[str]], everything: bool, tools: ToolsConfig, paths: PathsConfig
) -> ForgetResult:
    folder = collection_folder(name, paths)
    if not (folder / HASHES_FILE).is_file():
        raise CollectionNotFound(f"There is no collection {name!r}; `collections` lists them.")
    index = open_collection(name, None, tools, paths)
    try:
        if everything:
            removed = index.sources
            index.close()
            shutil.rmtree(folder)
            return ForgetResult(name, removed, [], 0, 0, deleted=True)
        named = [Path(os.path.abspath(Path(t).expanduser())) for t in targets]
        if not named:
            raise CollectionError("Name the files or folders to forget, or forget --all to delete the collection.")
        chosen, not_found = [], []
        for target in named:
            resolved = target.resolve()
            hits = [s for s in index.sources if Path(s) == resolved or Path(s).is_relative_to(resolved)]
            chosen += hits
            if not hits:
                not_found.append(str(target))
        removed = index.remove(chosen)
        roots = [r for r in index.settings.get("roots", []) if not any(Path(r).is_relative_to(t.resolve()) for t in named)]
        if roots != index.settings.get("roots", []):
            index.set_roots(roots)
        return ForgetResult(name, removed, not_found, len(index.sources), len(index))
    finally:
        index.close()


def list_collections(paths: PathsConfig | None = None, *, kind: str | None = None) -> list[CollectionInfo]:
    """Every collection under ``<data_root>/rag/`` (read from its records, no index loaded), by name."""
    root = (paths or PathsConfig()).rag_dir
    found = []
    for folder in sorted(root.iterdir()) if root.is_dir() else []:
        info = _info(folder)
        if info is not None and (kind is None or info.kind == kind):
            found.append(info)
    return found


def collection_info(name: str, paths: PathsConfig | None = None) -> CollectionInfo:
    info = _info(collection_folder(name, paths))
    if info is None:
        raise CollectionNotFound(f"There is no collection {safe_name(name)!r}; `collections` lists them.")
    return info


def _info(folder: Path) -> CollectionInfo | None:
    try:
        record = json.loads((folder / HASHES_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict):
        return None
    settings = record.get("settings") or {}
    files = record.get("files") or {}
    size = sum(p.stat().st_size for p in folder.iterdir() if p.is_file())
    return CollectionInfo(
        name=folder.name,
        kind=str(settings.get("kind", "session")),
        files=len(files),
        chunks=int(record.get("chunks", 0)),
        embedding_model=str(settings.get("embedding_model", "")),
        index=str(settings.get("index", "flat")),
        size_bytes=size,
        updated_at=settings.get("updated_at"),
        roots=list(settings.get("roots", [])),
        sources=sorted(files),
    )


def _expand(
    targets: list[Path],
    max_files: int,
    within: Path | None = None,
) -> tuple[list[Source], list[Path], dict[str, str], list[str]]:
    """The files to learn, the folders among the targets (resolved), what was refused in them (path: why),
    and notes on what was left out. With ``within``, each is confined to that folder (see ``learn``)."""
    files: dict[str, Source] = {}
    roots: list[Path] = []
    refused: dict[str, str] = {}
    notes: list[str] = []
    others = 0
    for target in targets:
        resolved = target.resolve()  # as named (a link the user names is followed, once, here)
        if within is not None and resolved != within and not resolved.is_relative_to(within):
            raise CollectionError(f"{target} is outside {within}; only files under it can be learned.")
        if not resolved.is_dir():  # named on purpose: the index says why if it cannot read it
            files.setdefault(str(resolved), _named(resolved, within))
            continue
        root = resolved
        roots.append(root)
        found, why_not = folder_sources(root, within)
        refused.update(why_not)
        for source in found:
            if not is_document(source.path):
                others += 1
            elif len(files) >= max_files:
                notes.append(f"only the first {max_files} files were learned (ToolsConfig.rag_max_learn_files)")
                return list(files.values()), roots, refused, notes
            else:
                files.setdefault(source.key, source)
    if others:
        notes.append(f"{others} file(s) of other types in the folders were left out")
    if refused:
        notes.append(f"{len(refused)} entr{'y' if len(refused) == 1 else 'ies'} in the folders not read: {REFUSED_HINT}")
    return list(files.values()), roots, refused, notes


#: What a refused entry of a learned folder means, and what to do about it.
REFUSED_HINT = (
    "links are not followed and only regular files are read (no pipes, sockets or devices; no hard-linked "
    "files, which may be a file from elsewhere under a second name); to learn such a file, copy it into the "
    "folder or name the file it points to"
)


def _named(path: Path, within: Path | None) -> Source:
    if within is None or path == within:
        return Source(str(path), path)
    relpath = path.relative_to(within).as_posix()
    return Source(str(path), path, within, relpath)


def folder_sources(root: Path, within: Path | None = None) -> tuple[list[Source], dict[str, str]]:
    """The regular files below ``root`` in name order, each confined to it, and what was refused (path: why).

    The walk never follows a link: a link to a file or to a folder, inside the folder or out of it, is
    refused, as are FIFOs, sockets, devices and files with more than one name (a hard link is the same
    file under another name, perhaps outside the folder, and nothing on it says which name came first).
    Dot folders and files (caches, checkpoints) and ``__pycache__`` are left out; the walk is bounded in
    depth and entries (``confined.list_confined``). Each file is later opened again from ``root``
    without following links, so a file swapped for a link after this walk is refused then. With
    ``within`` (a folder ``root`` lies in), the walk and those opens start from ``within`` instead.
    """
    base = within if within is not None else root
    prefix = root.relative_to(base).as_posix() if root != base else ""
    sources: list[Source] = []
    refused: dict[str, str] = {}
    for entry in list_confined(base, prefix, recursive=True):
        if "__pycache__" in entry.relpath.split("/"):
            continue
        path = base / entry.relpath
        if entry.refused:
            refused[str(path)] = entry.refused
        else:
            sources.append(Source(str(path), path, base, entry.relpath))
    return sources, refused
