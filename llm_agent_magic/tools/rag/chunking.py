"""Text to overlapping chunks by characters, breaking at paragraph boundaries where it can.

Paragraphs (blank-line separated) are packed whole into chunks of at most ``size``
characters. A paragraph longer than a chunk is cut at line ends, then sentence ends,
then spaces. Each chunk after the first starts up to ``overlap`` characters before the
end of the one before it: at a paragraph start when one lies in that window, else at
a word start, so that a passage cut in two is still found whole in one chunk.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass

_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n\s*")
# Where a too-long paragraph may be cut, best first: line ends, sentence ends, spaces.
_CUTS = (re.compile(r"\n"), re.compile(r"(?<=[.!?;:])\s"), re.compile(r"\s"))


@dataclass(frozen=True)
class TextChunk:
    text: str
    #: Character offset of the chunk's start in the document.
    position: int


def chunk_text(text: str, size: int = 1000, overlap: int = 150) -> list[TextChunk]:
    """Chunks of ``text`` (stripped; empty ones dropped), in document order."""
    if size < 1:
        raise ValueError("chunk size must be at least 1")
    overlap = max(0, min(overlap, size // 2))
    pieces = [p for start, end in _paragraphs(text) for p in _split_long(text, start, end, size - overlap)]
    starts = [s for s, _ in pieces]
    chunks: list[TextChunk] = []
    i = 0
    chunk_start = None
    while i < len(pieces):
        if chunk_start is None:
            chunk_start = pieces[i][0]
        end = pieces[i][1]
        i += 1
        while i < len(pieces) and pieces[i][1] - chunk_start <= size:
            end = pieces[i][1]
            i += 1
        body = text[chunk_start:end]
        stripped = body.strip()
        if stripped:
            chunks.append(TextChunk(stripped, chunk_start + (len(body) - len(body.lstrip()))))
        chunk_start = _overlap_start(text, starts, chunk_start, end, overlap) if i < len(pieces) else None
    return chunks


def _paragraphs(text: str) -> list[tuple[int, int]]:
    spans, start = [], 0
    for match in _PARAGRAPH_BREAK.finditer(text):
        if text[start : match.start()].strip():
            spans.append((start, match.start()))
        start = match.end()
    if text[start:].strip():
        spans.append((start, len(text)))
    return spans


def _split_long(text: str, start: int, end: int, limit: int) -> list[tuple[int, int]]:
    """Cut ``text[start:end]`` into near-equal spans of at most ``limit`` characters at the best break points."""
    limit = max(1, limit)
    spans = []
    while end - start > limit:
        remaining = end - start
        goal = -(-remaining // -(-remaining // limit))  # equal parts, so no tiny tail is left over
        window = text[start : start + limit + 1]
        cut = 0
        for pattern in _CUTS:
            found = [m.end() for m in pattern.finditer(window) if goal * 0.6 <= m.end() <= limit]
            if found:
                cut = min(found, key=lambda c: abs(c - goal))
                break
        cut = cut or goal
        spans.append((start, start + cut))
        start += cut
    spans.append((start, end))
    return spans


def _overlap_start(text: str, starts: list[int], chunk_start: int, end: int, overlap: int) -> int | None:
    """Where the next chunk begins: inside the last ``overlap`` characters of this one, or right after it."""
    if overlap == 0:
        return None
    window = max(chunk_start + 1, end - overlap)
    first = bisect.bisect_left(starts, window)
    if first < len(starts) and starts[first] < end:
        return starts[first]
    space = text.find(" ", window, end)
    return space + 1 if space != -1 and space + 1 < end else None
