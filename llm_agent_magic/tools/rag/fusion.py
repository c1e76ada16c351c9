"""Reciprocal rank fusion of the vector and keyword rankings, with exact identifiers first.

RRF (Cormack et al., 2009) adds ``1 / (K + rank)`` from each ranking a chunk appears in, so
neither ranking's scores need calibrating against the other's. A query that names an
identifier (``ERR_4012``) wants the passage that holds it verbatim, wherever the embeddings put
it: chunks holding more of the query's identifiers, as written, rank before all others.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

K = 60


@dataclass
class Fused:
    id: int
    score: float
    matched: list[str]
    similarity: float | None


def fuse(vector: list[tuple[int, float]], keyword: list[int], idents: list[str], text_of: Callable[[int], str]) -> list[Fused]:
    """Every chunk of either ranking, best first; ``matched`` says which found it (and ``identifier``)."""
    fused: dict[int, Fused] = {}
    for rank, (chunk_id, similarity) in enumerate(vector, 1):
        fused[chunk_id] = Fused(chunk_id, 1.0 / (K + rank), ["vector"], similarity)
    for rank, chunk_id in enumerate(keyword, 1):
        hit = fused.setdefault(chunk_id, Fused(chunk_id, 0.0, [], None))
        hit.score += 1.0 / (K + rank)
        hit.matched.insert(0, "keyword")
    exact: dict[int, int] = {}
    if idents:
        for chunk_id in keyword:  # a chunk holding an identifier verbatim holds its words too
            count = sum(ident in text_of(chunk_id) for ident in idents)
            if count:
                exact[chunk_id] = count
                fused[chunk_id].matched.insert(0, "identifier")
    return sorted(fused.values(), key=lambda h: (exact.get(h.id, 0), h.score), reverse=True)
