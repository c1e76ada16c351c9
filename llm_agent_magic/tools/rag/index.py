"""``DocumentIndex``: one collection of documents, their chunks, and a faiss index of their embeddings.

On disk, in the collection's folder (every file written to a temp file, then renamed):

- ``index.faiss``: ``IndexFlatIP`` over L2-normalised float32 vectors, so inner product is
  cosine similarity; row *i* is line *i* of ``chunks.jsonl``;
- ``chunks.jsonl``: ``{"text", "source", "position"}`` per chunk (source: absolute path,
  position: character offset in the document's text);
- ``hashes.json``: the settings the vectors were made with (embedding model, dimension,
  chunking) and, per file, its SHA-256, size and mtime, so ``update`` embeds only new or
  changed files and drops the chunks of files that are gone. It is written last and
  counts the chunks: a folder left half-written by a crash is seen as stale and rebuilt.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Union

import numpy as np

from ... import atomic
from ...config import PathsConfig
from ...exceptions import ConfigurationError, DocumentError, UnsafePath
from ...sandbox.inside.confined import open_confined, stat_confined
from .chunking import chunk_text
from .loaders import load_document

if TYPE_CHECKING:
    from ...llm import LLMClient

INDEX_FILE = "index.faiss"
CHUNKS_FILE = "chunks.jsonl"
HASHES_FILE = "hashes.json"
FORMAT_VERSION = 1
#: Most bytes of one document read when no ``max_file_bytes`` is set.
MAX_READ_BYTES = 2**30


@dataclass(frozen=True)
class SearchHit:
    text: str
    source: str
    position: int
    score: float

    @property
    def name(self) -> str:
        return Path(self.source).name


@dataclass
class IndexReport:
    """What one ``update`` did; ``skipped`` maps a file to why it is not in the index."""

    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    empty: list[str] = field(default_factory=list)
    embedded_chunks: int = 0

    def notes(self) -> list[str]:
        """Lines for the model about files it will not find passages from."""
        lines = [f"{Path(s).name}: skipped, {why}" for s, why in self.skipped.items()]
        return lines + [f"{Path(s).name}: no text found in it (a scan or an image?)" for s in self.empty]


@dataclass(frozen=True)
class Source:
    """One document to index: a path of the user's, followed as the user would follow it, or a file inside
    a folder the sandbox can change (``root``), read only as a regular file inside it (no links, no FIFOs)."""

    key: str
    path: Path
    root: Path | None = None
    relpath: str = ""

    def stat(self) -> os.stat_result:
        if self.root is not None:
            return stat_confined(self.root, self.relpath)
        st = self.path.stat()
        if not stat.S_ISREG(st.st_mode):
            raise FileNotFoundError(f"{self.path} is not a file")
        return st

    def open(self, max_bytes: int | None = None) -> IO[bytes]:
        if self.root is not None:
            return open_confined(self.root, self.relpath, max_bytes)
        return open(self.path, "rb")


SourceLike = Union[str, "os.PathLike[str]", Source]


def collection_folder(name: str, paths: PathsConfig | None = None) -> Path:
    """``<data_root>/rag/<name>``, with the name made safe as a folder name."""
    safe = re.sub(r"[^\w.-]+", "_", name).strip("._") or "default"
    return (paths or PathsConfig()).rag_dir / safe


class DocumentIndex:
    """A persistent, incrementally updated vector index over documents.

    ``await index.update(paths)`` makes the index hold exactly those files (embedding only
    what changed), ``await index.build(paths)`` re-embeds everything, and
    ``await index.search(question)`` returns the best chunks. Embeddings come from
    ``llm.embed`` (purpose "embed", the configured embedding model).
    """

    def __init__(
        self,
        folder: str | os.PathLike[str],
        llm: LLMClient,
        *,
        chunk_size: int = 1000,
        chunk_overlap: int = 150,
        max_file_bytes: int | None = None,
        confined_roots: Iterable[str | os.PathLike[str]] = (),
    ):
        """``confined_roots``: folders the sandbox can change (the session's workspace); documents inside
        them are read without following links and only as regular files."""
        self.folder = Path(folder)
        self.confined_roots = [Path(os.path.abspath(root)) for root in confined_roots]
        self.llm = llm
        self.chunk_size = chunk_size
        self.chunk_overlap = max(0, min(chunk_overlap, chunk_size // 2))
        self.max_file_bytes = max_file_bytes
        self._index: Any = None  # a faiss.Index once built or loaded
        self._chunks: list[dict[str, Any]] = []
        self._files: dict[str, dict[str, Any]] = {}
        self._settings: dict[str, Any] = {}
        self._load()

    @classmethod
    def for_collection(cls, name: str, llm: LLMClient, *, paths: PathsConfig | None = None, **kwargs: Any) -> DocumentIndex:
        return cls(collection_folder(name, paths or getattr(llm, "paths", None)), llm, **kwargs)

    def __len__(self) -> int:
        return len(self._chunks)

    @property
    def sources(self) -> list[str]:
        """Files in the index (including ones that held no text)."""
        return sorted(self._files)

    def chunks(self) -> list[dict[str, Any]]:
        return [dict(c) for c in self._chunks]

    # --- building ---------------------------------------------------------------------
    async def build(self, sources: Iterable[SourceLike]) -> IndexReport:
        """Index exactly ``sources`` from scratch, embedding every chunk again."""
        self._reset()
        return await self.update(sources)

    async def update(self, sources: Iterable[SourceLike]) -> IndexReport:
        """Make the index hold exactly ``sources``: embed new and changed files, drop the others."""
        report = IndexReport()
        wanted: dict[str, Source] = {}
        stats: dict[str, os.stat_result] = {}
        for source in sources:
            src = self.source(source)
            try:
                stats[src.key] = src.stat()
            except UnsafePath as exc:
                report.skipped[src.key] = exc.reason
            except OSError:
                report.skipped[src.key] = "the file does not exist"
            else:
                wanted.setdefault(src.key, src)
        if self._settings.get("chunking") != [self.chunk_size, self.chunk_overlap] or self._settings.get(
            "embedding_model"
        ) != self._model:
            self._reset()
        files = {s: dict(rec) for s, rec in self._files.items() if s in wanted}
        report.removed = sorted(set(self._files) - set(wanted))
        to_load: list[tuple[str, Source, dict[str, Any]]] = []
        for source, path in wanted.items():
            stat = stats[source]
            if self.max_file_bytes is not None and stat.st_size > self.max_file_bytes:
                report.skipped[source] = f"larger than {self.max_file_bytes / 1e6:g} MB"
                files.pop(source, None)
                continue
            old = files.get(source)
            if old and old["size"] == stat.st_size and old["mtime_ns"] == stat.st_mtime_ns:
                report.unchanged.append(source)
                continue
            try:
                digest = await asyncio.to_thread(_sha256, path)
            except OSError as exc:  # replaced by a link or removed since its stat
                report.skipped[source] = getattr(exc, "reason", "") or "the file could not be read"
                files.pop(source, None)
                continue
            record = {"sha256": digest, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
            if old and old["sha256"] == digest:
                files[source] = {**old, **record}
                report.unchanged.append(source)
                continue
            (report.changed if old else report.added).append(source)
            files.pop(source, None)
            to_load.append((source, path, record))

        new_chunks: list[dict[str, Any]] = []
        for source, path, record in to_load:
            try:
                pieces = await asyncio.to_thread(self._chunk_file, path)
            except DocumentError as exc:
                report.skipped[source] = str(exc)
                (report.changed if source in report.changed else report.added).remove(source)
                continue
            if not pieces:
                report.empty.append(source)
            files[source] = {**record, "chunks": len(pieces)}
            new_chunks += [{"text": p.text, "source": source, "position": p.position} for p in pieces]

        if not to_load and not report.removed and files.keys() == self._files.keys():
            if files != self._files:  # only stat records were refreshed: nothing to embed or drop
                self._files = files
                self._save()
            return report
        vectors = await self._embed([c["text"] for c in new_chunks])
        if self._index is not None and len(new_chunks) and vectors.shape[1] != self._index.d:
            # Same model name, other vectors (a re-pulled model): the old vectors are useless now.
            return await self.build(wanted.values())
        report.embedded_chunks = len(new_chunks)
        self._replace(files, new_chunks, vectors, renewed={source for source, _, _ in to_load})
        self._save()
        return report

    def source(self, source: SourceLike) -> Source:
        """A source path as the index reads it: confined when it lies inside a confined root.

        Inside one, the path is taken as written (resolving it would follow a link the sandbox planted).
        """
        if isinstance(source, Source):
            return source
        path = Path(os.path.abspath(Path(source).expanduser()))
        for root in self.confined_roots:
            if path != root and path.is_relative_to(root):
                return Source(str(path), path, root, path.relative_to(root).as_posix())
        resolved = path.resolve()
        return Source(str(resolved), resolved)

    def _chunk_file(self, source: Source) -> list[Any]:
        limit = self.max_file_bytes if self.max_file_bytes is not None else MAX_READ_BYTES
        try:
            with source.open(limit) as handle:
                data = handle.read(limit + 1)
        except OSError as exc:
            raise DocumentError(getattr(exc, "reason", "") or f"could not be read ({exc.strerror or exc})") from None
        if len(data) > limit:
            raise DocumentError(f"larger than {limit / 1e6:g} MB")
        doc = load_document(source.path, data=data)
        return chunk_text(doc.text, self.chunk_size, self.chunk_overlap)

    async def _embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self._settings.get("dim") or 0), dtype="float32")
        return _normalised(await self.llm.embed(texts))

    def _replace(
        self, files: dict[str, dict[str, Any]], new_chunks: list[dict[str, Any]], vectors: np.ndarray, renewed: set[str]
    ) -> None:
        """Keep the vectors of files still wanted and not re-read, add the new ones."""
        keep = [i for i, c in enumerate(self._chunks) if c["source"] in files and c["source"] not in renewed]
        kept_vectors = self._vectors(keep)
        dim = int(vectors.shape[1]) if len(new_chunks) else int(self._settings.get("dim") or 0)
        index = _faiss().IndexFlatIP(dim) if dim else None
        if index is not None:
            if keep:
                index.add(kept_vectors)
            if len(new_chunks):
                index.add(vectors)
        self._index = index
        self._chunks = [self._chunks[i] for i in keep] + new_chunks
        self._files = files
        self._settings = {"embedding_model": self._model, "dim": dim, "chunking": [self.chunk_size, self.chunk_overlap]}

    def _vectors(self, rows: list[int]) -> np.ndarray:
        if not rows or self._index is None:
            return np.zeros((0, self._index.d if self._index is not None else 0), dtype="float32")
        every = self._index.reconstruct_n(0, self._index.ntotal)
        return np.ascontiguousarray(every[rows], dtype="float32")

    def _reset(self) -> None:
        self._index, self._chunks, self._files, self._settings = None, [], {}, {}

    @property
    def _model(self) -> str:
        return self.llm.config.embedding_model

    # --- searching --------------------------------------------------------------------
    async def search(self, query: str, top_k: int = 4) -> list[SearchHit]:
        """The ``top_k`` chunks most similar to ``query``, best first (score: cosine similarity)."""
        if not self._chunks or self._index is None or top_k < 1:
            return []
        vector = _normalised(await self.llm.embed([query]))
        if vector.shape[1] != self._index.d:
            raise ConfigurationError(
                f"the query embedding has {vector.shape[1]} dimensions but the index {self._index.d}: "
                f"the embedding model changed; delete {self.folder} or call build() to rebuild the index"
            )
        scores, rows = self._index.search(vector, min(top_k, self._index.ntotal))
        hits = []
        for score, row in zip(scores[0], rows[0], strict=False):
            if row < 0:
                continue
            chunk = self._chunks[int(row)]
            hits.append(SearchHit(chunk["text"], chunk["source"], int(chunk["position"]), float(score)))
        return hits

    # --- disk -------------------------------------------------------------------------
    def _load(self) -> None:
        try:
            record = json.loads((self.folder / HASHES_FILE).read_text(encoding="utf-8"))
            lines = (self.folder / CHUNKS_FILE).read_text(encoding="utf-8").splitlines()
            chunks = [json.loads(line) for line in lines if line.strip()]
            index = _faiss().read_index(str(self.folder / INDEX_FILE)) if chunks else None
        except (OSError, ValueError, RuntimeError):
            return  # nothing saved yet, or unreadable: start empty and rebuild
        consistent = (
            record.get("version") == FORMAT_VERSION
            and record.get("chunks") == len(chunks)
            and (index is None or index.ntotal == len(chunks))
        )
        if consistent:
            self._index, self._chunks = index, chunks
            self._files, self._settings = record.get("files", {}), record.get("settings", {})

    def _save(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        if self._index is not None and self._chunks:
            atomic.write_bytes(self.folder / INDEX_FILE, _faiss().serialize_index(self._index).tobytes(), fsync=True)
        else:
            (self.folder / INDEX_FILE).unlink(missing_ok=True)
        atomic.write_bytes(
            self.folder / CHUNKS_FILE,
            "".join(json.dumps(c, ensure_ascii=False) + "\n" for c in self._chunks).encode("utf-8"),
            fsync=True,
        )
        record = {"version": FORMAT_VERSION, "settings": self._settings, "chunks": len(self._chunks), "files": self._files}
        atomic.write_bytes(self.folder / HASHES_FILE, json.dumps(record, indent=1, sort_keys=True).encode("utf-8"),
                           fsync=True)


def _faiss() -> Any:
    """faiss, imported on first use: every kernel that loads the magic would pay for it otherwise."""
    import faiss

    return faiss


def _normalised(vectors: list[list[float]]) -> np.ndarray:
    array = np.asarray(vectors, dtype="float32")
    if array.ndim != 2:
        raise ValueError(f"expected a list of embedding vectors, got an array of shape {array.shape}")
    norms = np.linalg.norm(array, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return np.ascontiguousarray(array / norms, dtype="float32")


def _sha256(source: Source) -> str:
    digest = hashlib.sha256()
    with source.open() as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
