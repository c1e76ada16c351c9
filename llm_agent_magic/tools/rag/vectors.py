"""``VectorStore``: a collection's embeddings in faiss, exact while small, approximate once large.

Vectors are L2-normalised float32 rows keyed by chunk id, so inner product is cosine similarity.
Up to ``approximate_above`` vectors the store is an exact ``IndexFlatIP`` (behind an id map);
past it, an HNSW graph over the full-precision vectors (``IndexHNSWFlat``): a query walks
``ef_search`` candidates of the graph instead of scanning every vector, and new vectors are linked
into the graph as they come. On the scripted embedder's bags of words at 100,000 x 1024 it beat IVF
by far (recall@4 against flat: IVF fp16, 316 lists, nprobe 64: 0.93 at 6-17 ms; IVF full precision,
1,024 lists, nprobe 128: 0.93 at 4.5 ms; HNSW, M 48, efSearch 128-160: 0.95-0.97 at 2.4-4.2 ms; ``bench/rag.py``).
8-bit or half-precision vectors in the graph were no faster (decoding costs what the smaller reads
save) and would need a re-ranking pass for exact scores.

faiss cannot take a node out of an HNSW graph, so a removed vector becomes a tombstone: its label
in the id map is set to -1, searches step through it (the graph stays connected) but never return
it, and the tombstones are saved with the index. Once they are ``REBUILD_DEAD_SHARE`` of the graph
the graph is rebuilt from the live vectors; under half the threshold the store is flat again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from ...config import ToolsConfig

#: Share of an HNSW graph's nodes removed after which it is rebuilt: tombstones still cost a visit
#: each, and a graph a quarter dead has lost that much of its reach.
REBUILD_DEAD_SHARE = 0.25
_LIVE = (0, 2**63 - 1)  # every chunk id; a tombstone's label (-1) is outside


def faiss_module() -> Any:
    """faiss, imported on first use: every kernel that loads the magic would pay for it otherwise."""
    import faiss

    return faiss


@dataclass(frozen=True)
class Approximate:
    """The HNSW graph's parameters (``ToolsConfig.rag_hnsw_*``)."""

    m: int = 48  # links per node: more, better recall per visited node, bigger and slower to build
    ef_construction: int = 64  # candidates weighed when linking a new node: build time against graph quality
    ef_search: int = 160  # candidates a query keeps: the recall/time trade at search
    threads: int = 2  # OpenMP threads while adding (one query uses one thread whatever this is)

    @classmethod
    def from_config(cls, tools: ToolsConfig) -> Approximate:
        return cls(
            m=tools.rag_hnsw_m,
            ef_construction=tools.rag_hnsw_ef_construction,
            ef_search=tools.rag_hnsw_ef_search,
            threads=tools.rag_index_threads,
        )


class VectorStore:
    """Add, remove and search vectors by int64 id; ``kind`` is ``"flat"`` or ``"hnsw"``."""

    kind: str

    def __init__(self, dim: int, *, approximate_above: int = 20_000, approximate: Approximate | None = None, index: Any = None):
        self.dim = dim
        self.approximate_above = approximate_above
        self.approximate = approximate or Approximate()
        faiss = faiss_module()
        self._index = index if index is not None else faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
        inner = faiss.downcast_index(self._index.index)
        self.kind = "hnsw" if isinstance(inner, faiss.IndexHNSW) else "flat"
        self._slots: dict[int, int] | None = None  # chunk id -> graph node, made on the first removal
        self._dead = int((self._labels() < 0).sum()) if self.kind == "hnsw" else 0

    @property
    def ntotal(self) -> int:
        """Live vectors (an HNSW graph also holds its tombstones)."""
        return int(self._index.ntotal) - self._dead

    @property
    def dead(self) -> int:
        return self._dead

    def _labels(self) -> np.ndarray:
        """The id map's labels, a view onto faiss' own memory (writing -1 there makes a tombstone)."""
        id_map = self._index.id_map
        if not id_map.size():
            return np.zeros(0, "int64")
        labels: np.ndarray = faiss_module().rev_swig_ptr(id_map.data(), id_map.size())
        return labels

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if len(ids):
            ids = np.asarray(ids, dtype="int64")
            first = int(self._index.ntotal)
            with self._threads():
                self._index.add_with_ids(np.ascontiguousarray(vectors, dtype="float32"), ids)
            if self._slots is not None:
                self._slots.update(zip(ids.tolist(), range(first, first + len(ids)), strict=True))
        self._rebalance()

    def remove(self, ids: list[int] | np.ndarray) -> None:
        if len(ids):
            if self.kind == "flat":
                self._index.remove_ids(np.asarray(ids, dtype="int64"))
            else:
                self._bury(ids)
        self._rebalance()

    def _bury(self, ids: list[int] | np.ndarray) -> None:
        labels = self._labels()
        if self._slots is None:
            live = np.flatnonzero(labels >= 0)
            self._slots = dict(zip(labels[live].tolist(), live.tolist(), strict=True))
        for chunk_id in np.asarray(ids, dtype="int64").tolist():
            slot = self._slots.pop(chunk_id, None)
            if slot is not None:
                labels[slot] = -1
                self._dead += 1

    def search(self, vector: np.ndarray, k: int, *, ef_search: int | None = None) -> list[tuple[int, float]]:
        """The ``k`` nearest ids with their cosine similarity, best first."""
        if not self.ntotal or k < 1:
            return []
        query = np.ascontiguousarray(vector, dtype="float32")
        k = min(k, self.ntotal)
        if self.kind == "flat":
            scores, ids = self._index.search(query, k)
        else:
            faiss = faiss_module()
            params = faiss.SearchParametersHNSW()
            params.efSearch = max(k, ef_search or self.approximate.ef_search)
            live = faiss.IDSelectorRange(*_LIVE) if self._dead else None
            if live is not None:  # the id map asks it about labels: tombstones (-1) are stepped through, not returned
                params.sel = live
            scores, ids = self._index.search(query, k, params=params)
        return [(int(i), float(s)) for s, i in zip(scores[0], ids[0], strict=False) if i >= 0]

    def everything(self) -> tuple[np.ndarray, np.ndarray]:
        """Every live id and its vector (to rebuild the index another way)."""
        labels = self._labels().copy()
        if not len(labels):
            return np.zeros(0, "int64"), np.zeros((0, self.dim), "float32")
        vectors = np.asarray(self._index.index.reconstruct_n(0, len(labels)), dtype="float32")
        live = labels >= 0
        return labels[live], vectors[live]

    # --- switching between exact and approximate ---------------------------------------------------
    def _rebalance(self) -> None:
        n = self.ntotal
        if self.kind == "flat" and n > self.approximate_above:
            self._build_hnsw()
        elif self.kind == "hnsw" and n < self.approximate_above // 2:
            ids, vectors = self.everything()
            faiss = faiss_module()
            self._index = faiss.IndexIDMap2(faiss.IndexFlatIP(self.dim))
            self._index.add_with_ids(vectors, ids)
            self.kind, self._slots, self._dead = "flat", None, 0
        elif self.kind == "hnsw" and self._dead > REBUILD_DEAD_SHARE * self._index.ntotal:
            self._build_hnsw()

    def _build_hnsw(self) -> None:
        faiss = faiss_module()
        ids, vectors = self.everything()
        graph = faiss.IndexHNSWFlat(self.dim, self.approximate.m, faiss.METRIC_INNER_PRODUCT)
        graph.hnsw.efConstruction = self.approximate.ef_construction
        # A plain id map (no reverse map to keep in step): labels are only read out and turned into tombstones.
        index = faiss.IndexIDMap(graph)
        with self._threads():
            index.add_with_ids(vectors, ids)
        self._index, self.kind, self._slots, self._dead = index, "hnsw", None, 0

    def _threads(self) -> Any:
        return _OmpThreads(self.approximate.threads)

    # --- disk ---------------------------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        data: bytes = faiss_module().serialize_index(self._index).tobytes()
        return data

    @classmethod
    def from_bytes(cls, data: bytes, **kwargs: Any) -> VectorStore:
        faiss = faiss_module()
        index = faiss.deserialize_index(np.frombuffer(data, dtype="uint8"))
        if isinstance(index, faiss.IndexIVF):  # saved before HNSW replaced IVF: carry its vectors over
            lists = index.invlists
            ids = np.concatenate(
                [np.zeros(0, "int64")]
                + [
                    faiss.rev_swig_ptr(lists.get_ids(n), lists.list_size(n)).copy()
                    for n in range(index.nlist)
                    if lists.list_size(n)
                ]
            ).astype("int64")
            store = cls(index.d, **kwargs)
            store.add(ids, index.reconstruct_batch(ids) if len(ids) else np.zeros((0, index.d), "float32"))
            return store
        return cls(index.d, index=index, **kwargs)


class _OmpThreads:
    """faiss' OpenMP threads for one block (the setting is the calling thread's: restore it after)."""

    def __init__(self, threads: int):
        self.threads = max(1, threads)
        self.before = 0

    def __enter__(self) -> None:
        faiss = faiss_module()
        self.before = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(self.threads)

    def __exit__(self, *exc: object) -> None:
        faiss_module().omp_set_num_threads(self.before)
