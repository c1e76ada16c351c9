"""``DocumentIndex``: one collection of documents, their chunks, their embeddings and their words.

On disk, in the collection's folder (every file but the keyword table written to a temp file, then renamed):

- ``index.faiss``: the vectors by chunk id (``vectors.VectorStore``: exact, approximate once large);
- ``keywords.sqlite``: the chunks' words in SQLite FTS5 (``keywords.KeywordIndex``), rebuilt from the
  chunk list whenever the two disagree;
- ``chunks.jsonl``: ``{"id", "text", "source", "position", "end", "where"}`` per chunk (source: absolute
  path; position and end: the character range in the document's text; where: ``page 3``, ``cell 4`` or "");
- ``hashes.json``: the settings the vectors were made with (embedding model, dimension, chunking, the
  folders learned) and, per file, its SHA-256, size and mtime, so ``update`` embeds only new or changed
  files. It is written last and counts the chunks: a folder left half-written by a crash is seen as stale
  and rebuilt.

A collection answers only queries embedded by the model that embedded it: another model's vectors
mean nothing against its own. ``EmbeddingModelMismatch`` says so and how to re-embed.
"""

from __future__ import annotations

import asyncio
import bisect
import hashlib
import json
import os
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Union

import numpy as np

from ... import atomic
from ...config import PathsConfig
from ...exceptions import ConfigurationError, DocumentError, EmbeddingModelMismatch, UnsafePath
from ...sandbox.inside.confined import open_confined, stat_confined
from .chunking import chunk_text
from .fusion import fuse
from .keywords import KEYWORDS_FILE, KeywordIndex, identifiers
from .loaders import SUPPORTED_SUFFIXES, load_document
from .vectors import Approximate, VectorStore

if TYPE_CHECKING:
    from ...llm import LLMClient

INDEX_FILE = "index.faiss"
CHUNKS_FILE = "chunks.jsonl"
HASHES_FILE = "hashes.json"
FORMAT_VERSION = 2
#: Most bytes of one document read when no ``max_file_bytes`` is set.
MAX_READ_BYTES = 2**30
#: Candidates each ranking hands to the fusion, per hit asked for (at least ``MIN_CANDIDATES``).
CANDIDATES_PER_HIT, MIN_CANDIDATES = 8, 50
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class SearchHit:
    text: str
    source: str
    position: int
    score: float
    end: int = -1
    #: "page 3", "cell 4", or "" when the format has neither.
    where: str = ""
    #: Which searches found it: "identifier" (it holds a name or code of the query verbatim), "keyword", "vector".
    matched: tuple[str, ...] = ()
    #: Cosine similarity to the query, when the vector search found it.
    similarity: float | None = None
    collection: str = ""

    @property
    def name(self) -> str:
        return Path(self.source).name

    def citation(self) -> str:
        """``report.pdf, page 3, characters 1200-2150``: what the answer cites."""
        parts = [self.name, *([self.where] if self.where else []), f"characters {self.position}-{self.end}"]
        return ", ".join(parts)


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
    embedding_calls: int = 0

    def notes(self) -> list[str]:
        """Lines for the model (and the user) about files it will not find passages from."""
        lines = [f"{Path(s).name}: skipped, {why}" for s, why in self.skipped.items()]
        return lines + [f"{Path(s).name}: no text found in it (a scan or an image?)" for s in self.empty]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Source:
    """One document to index, always read through ``confined.open_confined``: without following a link,
    only as a regular file with a single name (no FIFO that would hang the read, no device, no hard link
    that may be a file from elsewhere under a second name), and within the size limit.

    ``root`` is the folder it is confined to: the sandbox's workspace, a learned or configured folder
    (every folder between it and the file is walked without following links), or, for a file named on
    its own, the folder it is in (its path is resolved once, when it is named, as the user's shell would).
    """

    key: str
    path: Path
    root: Path | None = None
    relpath: str = ""

    def stat(self) -> os.stat_result:
        return stat_confined(*self._where())

    def open(self, max_bytes: int | None = None) -> IO[bytes]:
        return open_confined(*self._where(), max_bytes)

    def _where(self) -> tuple[Path, str]:
        if self.root is not None:
            return self.root, self.relpath
        return Path(os.path.realpath(self.path.parent)), self.path.name  # the folders above it are the user's


SourceLike = Union[str, "os.PathLike[str]", Source]


def collection_folder(name: str, paths: PathsConfig | None = None) -> Path:
    """``<data_root>/rag/<name>``, with the name made safe as a folder name."""
    return (paths or PathsConfig()).rag_dir / safe_name(name)


def safe_name(name: str) -> str:
    return re.sub(r"[^\w.-]+", "_", name).strip("._") or "default"


class DocumentIndex:
    """A persistent, incrementally updated hybrid (vector + keyword) index over documents.

    ``await index.update(paths)`` makes the index hold exactly those files (embedding only what
    changed), ``await index.build(paths)`` re-embeds everything, ``index.remove(paths)`` drops files
    without embedding anything, and ``await index.search(question)`` returns the best chunks.
    Embeddings come from ``llm.embed`` (purpose "embed", the configured embedding model).
    """

    def __init__(
        self,
        folder: str | os.PathLike[str],
        llm: LLMClient | None,
        *,
        chunk_size: int = 1000,
        chunk_overlap: int = 150,
        max_file_bytes: int | None = None,
        confined_roots: Iterable[str | os.PathLike[str]] = (),
        approximate_above: int = 20_000,
        approximate: Approximate | None = None,
        on_model_change: str = "refuse",
        kind: str = "session",
    ):
        """``confined_roots``: folders the sandbox can change (the session's workspace); documents inside
        them are read without following links and only as regular files. ``on_model_change``: "refuse"
        (`EmbeddingModelMismatch`) or "rebuild" (re-embed everything, for indexes nobody curates)."""
        self.folder = Path(folder)
        self.name = self.folder.name
        self.confined_roots = [Path(os.path.abspath(root)) for root in confined_roots]
        self.llm = llm
        self.chunk_size = chunk_size
        self.chunk_overlap = max(0, min(chunk_overlap, chunk_size // 2))
        self.max_file_bytes = max_file_bytes
        self.approximate_above, self.approximate = approximate_above, approximate or Approximate()
        self.on_model_change = on_model_change
        #: "learned" (documents added and removed on purpose: learn, forget) or "session" (rag_search's own).
        self.kind = kind
        self._vectors: VectorStore | None = None
        self._keywords = KeywordIndex(self.folder)
        self._chunks: dict[int, dict[str, Any]] = {}
        self._files: dict[str, dict[str, Any]] = {}
        self._settings: dict[str, Any] = {}
        self._load()

    @classmethod
    def for_collection(
        cls, name: str, llm: LLMClient | None, *, paths: PathsConfig | None = None, **kwargs: Any
    ) -> DocumentIndex:
        return cls(collection_folder(name, paths or getattr(llm, "paths", None)), llm, **kwargs)

    def __len__(self) -> int:
        return len(self._chunks)

    def close(self) -> None:
        self._keywords.close()

    @property
    def sources(self) -> list[str]:
        """Files in the index (including ones that held no text)."""
        return sorted(self._files)

    @property
    def settings(self) -> dict[str, Any]:
        return dict(self._settings)

    @property
    def index_kind(self) -> str:
        return self._vectors.kind if self._vectors is not None else "flat"

    def chunks_of(self, source: str) -> int:
        return int(self._files.get(source, {}).get("chunks", 0))

    def chunks(self) -> list[dict[str, Any]]:
        return [dict(c) for c in self._chunks.values()]

    # --- building ---------------------------------------------------------------------
    async def build(self, sources: Iterable[SourceLike], progress: Progress | None = None) -> IndexReport:
        """Index exactly ``sources`` from scratch, embedding every chunk again."""
        self._reset()
        return await self.update(sources, progress=progress)

    def _found(self, sources: Iterable[SourceLike], report: IndexReport) -> tuple[dict[str, Source], dict[str, os.stat_result]]:
        """The sources that can be read, with their stat records; the others go into ``report.skipped`` with why."""
        wanted: dict[str, Source] = {}
        stats: dict[str, os.stat_result] = {}
        for source in sources:
            src = self.source(source)
            try:
                stats[src.key] = src.stat()
            except UnsafePath as exc:
                report.skipped[src.key] = exc.reason
            except PermissionError:
                report.skipped[src.key] = "permission denied"
            except OSError:
                report.skipped[src.key] = "the file does not exist"
            else:
                wanted.setdefault(src.key, src)
        return wanted, stats

    async def update(
        self,
        sources: Iterable[SourceLike],
        *,
        reembed: bool = False,
        progress: Progress | None = None,
        roots: list[str] | None = None,
    ) -> IndexReport:
        """Make the index hold exactly ``sources``: embed new and changed files, drop the others.

        ``reembed``: embed everything again (after a change of embedding model). ``roots``: the folders
        these files were found in, kept with the collection (``collections`` lists them).
        """
        report = IndexReport()
        wanted, stats = self._found(sources, report)
        self._check_settings(reembed)
        files = {s: dict(rec) for s, rec in self._files.items() if s in wanted}
        report.removed = sorted(set(self._files) - set(wanted))
        new_chunks: list[dict[str, Any]] = []
        renewed: set[str] = set()
        for key, src in wanted.items():
            outcome = await asyncio.to_thread(self._read_file, src, stats[key], files.get(key))
            if isinstance(outcome, str):  # why it is skipped
                report.skipped[key] = outcome
                files.pop(key, None)
            elif outcome is None:
                report.unchanged.append(key)
            elif "sha256" in outcome and "pieces" not in outcome:  # same content, new stat record
                files[key] = outcome
                report.unchanged.append(key)
            else:
                (report.changed if key in files else report.added).append(key)
                pieces = outcome.pop("pieces")
                renewed.add(key)
                if not pieces:
                    report.empty.append(key)
                files[key] = {**outcome, "chunks": len(pieces)}
                new_chunks += [{**p, "source": key} for p in pieces]

        if roots is not None:
            files_roots = sorted(set(roots))
        else:
            files_roots = self._settings.get("roots", [])
        if not renewed and not report.removed and files.keys() == self._files.keys():
            if files != self._files or files_roots != self._settings.get("roots", []):
                self._files = files
                self._settings["roots"] = files_roots
                self._save()
            return report
        vectors, calls = await self._embed([c["text"] for c in new_chunks], progress)
        report.embedding_calls = calls
        if self._vectors is not None and self._vectors.ntotal and len(new_chunks) and vectors.shape[1] != self._vectors.dim:
            # Same model name, other vectors (a re-pulled model): the old vectors are useless now.
            return await self.build(wanted.values(), progress)
        report.embedded_chunks = len(new_chunks)
        self._replace(files, new_chunks, vectors, renewed)
        self._settings["roots"] = files_roots
        self._save()
        return report

    def remove(self, sources: Iterable[SourceLike]) -> list[str]:
        """Drop these files from the index (no embedding); returns the ones that were in it."""
        keys = {self.source(s).key for s in sources} & set(self._files)
        if keys:
            files = {k: v for k, v in self._files.items() if k not in keys}
            self._replace(files, [], np.zeros((0, self._dim), "float32"), set())
            self._save()
        return sorted(keys)

    def set_roots(self, roots: list[str]) -> None:
        """The folders this collection was learned from (``update(roots=...)`` sets them too)."""
        self._settings["roots"] = sorted(set(roots))
        self._save()

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

    def _check_settings(self, reembed: bool) -> None:
        stored = self._settings.get("embedding_model")
        if self._chunks and stored and stored != self._model and not reembed:
            if self.on_model_change != "rebuild":
                raise EmbeddingModelMismatch(self.name, stored, self._model)
            reembed = True
        if reembed or self._settings.get("chunking") != [self.chunk_size, self.chunk_overlap]:
            roots = self._settings.get("roots", [])
            self._reset()
            self._settings["roots"] = roots

    def _read_file(self, source: Source, before: os.stat_result, old: dict[str, Any] | None) -> Any:
        """None: unchanged; a str: why it is skipped; a record (with ``pieces`` when it must be embedded)."""
        if source.path.suffix.lower() not in SUPPORTED_SUFFIXES:
            return f"not a document type this index reads ({', '.join(sorted(SUPPORTED_SUFFIXES))})"
        limit = self.max_file_bytes if self.max_file_bytes is not None else MAX_READ_BYTES
        if before.st_size > limit:
            return f"larger than {limit / 1e6:g} MB (ToolsConfig.rag_max_file_mb)"
        if old and old["size"] == before.st_size and old["mtime_ns"] == before.st_mtime_ns:
            return None
        try:
            with source.open(limit) as handle:
                data = handle.read(limit + 1)
                after = os.fstat(handle.fileno())
        except PermissionError:
            return "permission denied"
        except OSError as exc:  # replaced by a link or removed since its stat
            return getattr(exc, "reason", "") or f"could not be read ({exc.strerror or exc})"
        if len(data) > limit:
            return f"larger than {limit / 1e6:g} MB (ToolsConfig.rag_max_file_mb)"
        if (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns) or len(data) != after.st_size:
            return "it changed while it was being read; learn it again once it is saved"
        record = {"sha256": hashlib.sha256(data).hexdigest(), "size": after.st_size, "mtime_ns": after.st_mtime_ns}
        if old and old["sha256"] == record["sha256"]:
            return {**old, **record}
        try:
            doc = load_document(source.path, data=data)
        except DocumentError as exc:
            return str(exc)
        sections = doc.meta.get("sections") or []
        starts = [s for s, _ in sections]
        pieces = []
        for piece in chunk_text(doc.text, self.chunk_size, self.chunk_overlap):
            at = bisect.bisect_right(starts, piece.position) - 1
            pieces.append(
                {
                    "text": piece.text,
                    "position": piece.position,
                    "end": piece.position + len(piece.text),
                    "where": sections[at][1] if at >= 0 else "",
                }
            )
        return {**record, "pieces": pieces}

    async def _embed(self, texts: list[str], progress: Progress | None) -> tuple[np.ndarray, int]:
        if not texts:
            return np.zeros((0, self._dim), dtype="float32"), 0
        if self.llm is None:
            raise ConfigurationError("this DocumentIndex was opened without an LLM client, so it cannot embed")
        size = max(1, self.llm.config.embed_batch_size)
        parts, calls = [], 0
        for start in range(0, len(texts), size):
            parts.append(_normalised(await self.llm.embed(texts[start : start + size])))
            calls += 1
            if progress is not None:
                progress(min(start + size, len(texts)), len(texts))
        return np.concatenate(parts), calls

    def _replace(
        self, files: dict[str, dict[str, Any]], new_chunks: list[dict[str, Any]], vectors: np.ndarray, renewed: set[str]
    ) -> None:
        """Drop the chunks of files gone or re-read, add the new ones: vectors, words and the list."""
        gone = [i for i, c in self._chunks.items() if c["source"] not in files or c["source"] in renewed]
        next_id = int(self._settings.get("next_id", 0))
        ids = np.arange(next_id, next_id + len(new_chunks), dtype="int64")
        dim = int(vectors.shape[1]) if len(new_chunks) else self._dim
        if self._vectors is None and dim:
            self._vectors = VectorStore(dim, approximate_above=self.approximate_above, approximate=self.approximate)
        if self._vectors is not None:
            self._vectors.remove(gone)
            self._vectors.add(ids, vectors)
        for i in gone:
            del self._chunks[i]
        for chunk_id, chunk in zip(ids.tolist(), new_chunks, strict=True):
            self._chunks[chunk_id] = {"id": chunk_id, **chunk}
        self._keywords.replace(gone, ((int(i), c["text"]) for i, c in zip(ids, new_chunks, strict=True)))
        self._files = files
        self._settings.update(
            embedding_model=self._model,
            dim=dim,
            chunking=[self.chunk_size, self.chunk_overlap],
            next_id=next_id + len(new_chunks),
            updated_at=time.time(),
        )

    def _reset(self) -> None:
        self._vectors, self._chunks, self._files, self._settings = None, {}, {}, {}
        self._keywords.rebuild(())

    @property
    def _dim(self) -> int:
        return int(self._settings.get("dim") or 0)

    @property
    def _model(self) -> str:
        if self.llm is None:
            return str(self._settings.get("embedding_model", ""))
        return str(self.llm.config.embedding_model)

    # --- searching --------------------------------------------------------------------
    async def search(self, query: str, top_k: int = 4, *, mode: str = "hybrid") -> list[SearchHit]:
        """The ``top_k`` best chunks for ``query``, best first: vector and keyword rankings fused
        (``score``), chunks holding the query's identifiers verbatim first. ``mode`` "vector" or
        "keyword" uses one ranking alone (to see what each finds)."""
        if not self._chunks or self._vectors is None or top_k < 1:
            return []
        if mode not in ("hybrid", "vector", "keyword"):
            raise ValueError(f"mode is 'hybrid', 'vector' or 'keyword', not {mode!r}")
        stored = str(self._settings.get("embedding_model", ""))
        if stored and stored != self._model:
            raise EmbeddingModelMismatch(self.name, stored, self._model)
        assert self.llm is not None
        vector = _normalised(await self.llm.embed([query]))
        if vector.shape[1] != self._vectors.dim:
            raise EmbeddingModelMismatch(
                self.name, stored, self._model, f" ({self._vectors.dim} dimensions; the model now gives {vector.shape[1]})"
            )
        candidates = max(MIN_CANDIDATES, CANDIDATES_PER_HIT * top_k)
        store = self._vectors

        async def nothing() -> list[Any]:
            return []

        # Two worker threads at once: faiss and sqlite3 both let go of the GIL, so the keyword search
        # costs no time beside the vector one when a second core is free.
        by_vector, by_keyword = await asyncio.gather(
            asyncio.to_thread(store.search, vector, candidates) if mode != "keyword" else nothing(),
            asyncio.to_thread(self._keywords.search, query, candidates) if mode != "vector" else nothing(),
        )
        by_keyword = [i for i in by_keyword if i in self._chunks]
        idents = identifiers(query) if mode == "hybrid" else []
        ranked = fuse(by_vector, by_keyword, idents, lambda i: str(self._chunks[i]["text"]))
        hits = []
        for fused in ranked[:top_k]:
            chunk = self._chunks.get(fused.id)
            if chunk is None:
                continue
            hits.append(
                SearchHit(
                    chunk["text"],
                    chunk["source"],
                    int(chunk["position"]),
                    fused.score,
                    end=int(chunk["end"]),
                    where=chunk.get("where", ""),
                    matched=tuple(fused.matched),
                    similarity=fused.similarity,
                    collection=self.name,
                )
            )
        return hits

    # --- disk -------------------------------------------------------------------------
    def disk_bytes(self) -> int:
        total = 0
        for name in (INDEX_FILE, CHUNKS_FILE, HASHES_FILE, KEYWORDS_FILE):
            try:
                total += (self.folder / name).stat().st_size
            except OSError:
                pass
        return total

    def _load(self) -> None:
        try:
            record = json.loads((self.folder / HASHES_FILE).read_text(encoding="utf-8"))
            lines = (self.folder / CHUNKS_FILE).read_text(encoding="utf-8").splitlines()
            chunks = [json.loads(line) for line in lines if line.strip()]
            settings = record.get("settings", {})
            vectors = (
                VectorStore.from_bytes(
                    (self.folder / INDEX_FILE).read_bytes(),
                    approximate_above=self.approximate_above,
                    approximate=self.approximate,
                )
                if chunks
                else None
            )
        except (OSError, ValueError, RuntimeError, AttributeError):
            return  # nothing saved yet, or unreadable: start empty and rebuild
        consistent = (
            record.get("version") == FORMAT_VERSION
            and record.get("chunks") == len(chunks)
            and (vectors is None or vectors.ntotal == len(chunks))
        )
        if not consistent:
            return
        self._vectors = vectors
        self._chunks = {int(c["id"]): c for c in chunks}
        self._files, self._settings = record.get("files", {}), settings
        if self._keywords.count() != len(self._chunks):  # missing, corrupt or stale: it holds nothing of its own
            self._keywords.rebuild((i, str(c["text"])) for i, c in self._chunks.items())

    def _save(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self._settings.update(kind=self.kind, index=self.index_kind)
        if self._vectors is not None and self._chunks:
            atomic.write_bytes(self.folder / INDEX_FILE, self._vectors.to_bytes(), fsync=True)
        else:
            (self.folder / INDEX_FILE).unlink(missing_ok=True)
        atomic.write_bytes(
            self.folder / CHUNKS_FILE,
            "".join(json.dumps(c, ensure_ascii=False) + "\n" for c in self._chunks.values()).encode("utf-8"),
            fsync=True,
        )
        record = {"version": FORMAT_VERSION, "settings": self._settings, "chunks": len(self._chunks), "files": self._files}
        atomic.write_bytes(self.folder / HASHES_FILE, json.dumps(record, indent=1, sort_keys=True).encode("utf-8"), fsync=True)


def _normalised(vectors: list[list[float]] | np.ndarray) -> np.ndarray:
    array = np.asarray(vectors, dtype="float32")
    if array.ndim != 2:
        raise ValueError(f"expected a list of embedding vectors, got an array of shape {array.shape}")
    norms = np.linalg.norm(array, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return np.ascontiguousarray(array / norms, dtype="float32")
