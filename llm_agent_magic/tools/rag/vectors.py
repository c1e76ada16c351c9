"""``VectorStore``: a collection's embeddings in faiss, exact while small, approximate once large.

Vectors are L2-normalised float32 rows keyed by chunk id, so inner product is cosine similarity.
Up to ``approximate_above`` vectors the store is an exact ``IndexFlatIP`` (behind an id map);
past it, an IVF index of half-precision vectors (``IndexIVFScalarQuantizer``, fp16: a query reads half the
bytes, which is what a scan of 1024-dimension vectors waits for; recall is unchanged at 3 decimals) whose
coarse centroids are trained once on a sample and then kept:
new vectors go into the nearest lists and removed ones are taken out, with no retraining, until
the store has grown to ``RETRAIN_GROWTH`` times the size it was trained at (its centroids no
longer describe the data then) or shrunk back under half the threshold (flat is exact and fast
enough again). ``bench/rag.py`` measures the recall against the flat index.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

RETRAIN_GROWTH = 4.0
#: Training points per coarse centroid (faiss warns below 39; 150 with 20 iterations bought +0.02 recall@4 at 100,000).
TRAIN_PER_LIST = 150
MIN_LISTS, MAX_LISTS = 16, 4096


def faiss_module() -> Any:
    """faiss, imported on first use: every kernel that loads the magic would pay for it otherwise."""
    import faiss

    return faiss


class VectorStore:
    """Add, remove and search vectors by int64 id; ``kind`` is ``"flat"`` or ``"ivf"``."""

    def __init__(self, dim: int, *, approximate_above: int = 20_000, nprobe: int = 64, index: Any = None,
                 trained_at: int = 0):
        self.dim = dim
        self.approximate_above = approximate_above
        self.nprobe = nprobe
        self.trained_at = trained_at
        faiss = faiss_module()
        self._index = index if index is not None else faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
        if self.kind == "ivf":
            self._index.nprobe = nprobe

    @property
    def kind(self) -> str:
        return "ivf" if isinstance(self._index, faiss_module().IndexIVF) else "flat"

    @property
    def ntotal(self) -> int:
        return int(self._index.ntotal)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if len(ids):
            self._index.add_with_ids(np.ascontiguousarray(vectors, dtype="float32"), np.asarray(ids, dtype="int64"))
        self._rebalance()

    def remove(self, ids: list[int] | np.ndarray) -> None:
        if len(ids):
            self._index.remove_ids(np.asarray(ids, dtype="int64"))
        self._rebalance()

    def search(self, vector: np.ndarray, k: int) -> list[tuple[int, float]]:
        """The ``k`` nearest ids with their cosine similarity, best first."""
        if not self.ntotal or k < 1:
            return []
        scores, ids = self._index.search(np.ascontiguousarray(vector, dtype="float32"), min(k, self.ntotal))
        return [(int(i), float(s)) for s, i in zip(scores[0], ids[0], strict=False) if i >= 0]

    def everything(self) -> tuple[np.ndarray, np.ndarray]:
        """Every id and its vector (to rebuild the index another way)."""
        faiss = faiss_module()
        if self.kind == "flat":
            ids = faiss.vector_to_array(self._index.id_map).astype("int64")
            vectors = self._index.index.reconstruct_n(0, self.ntotal) if len(ids) else np.zeros((0, self.dim), "float32")
            return ids, np.asarray(vectors, dtype="float32")
        invlists = self._index.invlists
        id_parts, vector_parts = [], []
        for lst in range(self._index.nlist):
            size = invlists.list_size(lst)
            if not size:
                continue
            id_parts.append(faiss.rev_swig_ptr(invlists.get_ids(lst), size).copy())
            codes = faiss.rev_swig_ptr(invlists.get_codes(lst), size * self._index.code_size)
            # Codes are the vectors themselves in half precision (no residuals: see _build_ivf).
            vector_parts.append(np.frombuffer(codes.tobytes(), dtype="float16").reshape(size, self.dim).astype("float32"))
        if not id_parts:
            return np.zeros(0, "int64"), np.zeros((0, self.dim), "float32")
        return np.concatenate(id_parts).astype("int64"), np.concatenate(vector_parts)

    # --- switching between exact and approximate ---------------------------------------------------
    def _rebalance(self) -> None:
        n = self.ntotal
        if self.kind == "flat" and n > self.approximate_above:
            self._build_ivf()
        elif self.kind == "ivf" and n < self.approximate_above // 2:
            ids, vectors = self.everything()
            faiss = faiss_module()
            self._index = faiss.IndexIDMap2(faiss.IndexFlatIP(self.dim))
            self._index.add_with_ids(vectors, ids)
            self.trained_at = 0
        elif self.kind == "ivf" and n > RETRAIN_GROWTH * max(1, self.trained_at):
            self._build_ivf()

    def _build_ivf(self) -> None:
        faiss = faiss_module()
        ids, vectors = self.everything()
        n = len(ids)
        nlist = int(min(MAX_LISTS, max(MIN_LISTS, math.sqrt(n))))
        quantizer = faiss.IndexFlatIP(self.dim)
        index = faiss.IndexIVFScalarQuantizer(quantizer, self.dim, nlist, faiss.ScalarQuantizer.QT_fp16,
                                              faiss.METRIC_INNER_PRODUCT)
        index.by_residual = False  # stored as they are, so everything() can read them back
        index.cp.niter = 20
        # A fixed, evenly spread sample: the same vectors train the same centroids, run after run.
        sample = vectors[:: max(1, n // (TRAIN_PER_LIST * nlist))]
        index.train(np.ascontiguousarray(sample))
        index.set_direct_map_type(faiss.DirectMap.Hashtable)  # remove_ids by id without scanning every list
        index.add_with_ids(vectors, ids)
        index.nprobe = self.nprobe
        self._index = index
        self.trained_at = n

    # --- disk ---------------------------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        data: bytes = faiss_module().serialize_index(self._index).tobytes()
        return data

    @classmethod
    def from_bytes(cls, data: bytes, **kwargs: Any) -> VectorStore:
        index = faiss_module().deserialize_index(np.frombuffer(data, dtype="uint8"))
        return cls(index.d, index=index, **kwargs)
