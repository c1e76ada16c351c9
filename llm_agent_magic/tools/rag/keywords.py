"""``KeywordIndex``: SQLite FTS5 over a collection's chunks, for the words embeddings blur.

Names, codes and numbers (``ERR_4012``, ``XK-2291-B``, ``v2.3.1``) mean little to an embedding
model but everything to the person asking. The table lives beside the faiss index
(``keywords.sqlite``; rowid = chunk id) in the standard library's sqlite3, ranked by BM25.
It holds nothing the chunk list does not, so one that disagrees with it is rebuilt from it.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable
from pathlib import Path

KEYWORDS_FILE = "keywords.sqlite"
_WORD = re.compile(r"\w+")
_EDGE = "\"'`()[]{}<>,;?!.:"
_JOINED = re.compile(r"[A-Za-z0-9][_.:/-][A-Za-z0-9]")
# Words too common to rank by; dropped from keyword queries (they only slow a large table down).
_STOP = frozenset(
    "a an and are as at be by can do does did for from had has have how i if in into is it its me my no not of on "
    "or our so than that the their them then there these they this to was we were what when where which who why "
    "will with you your about all any tell show find give".split()
)


def identifiers(query: str) -> list[str]:
    """The words of ``query`` that look like names or codes, as written: letters with digits (``v2``,
    ``4012b``), ``snake_case``, ``camelCase``, ``ACRONYMS``, parts joined by ``_ - . : /`` around a digit or
    a capital (``XK-2291-B``, ``pandas.DataFrame``); at least 3 characters."""
    found = []
    for raw in query.split():
        word = raw.strip(_EDGE)
        if len(word) < 3 or not any(c.isalnum() for c in word):
            continue
        has_digit = any(c.isdigit() for c in word)
        has_alpha = any(c.isalpha() for c in word)
        camel = any(a.islower() and b.isupper() for a, b in zip(word, word[1:], strict=False))
        acronym = word.isupper() and has_alpha
        joined = bool(_JOINED.search(word)) and (has_digit or any(c.isupper() for c in word) or "_" in word)
        if (has_digit and has_alpha) or "_" in word.strip("_") or camel or acronym or joined:
            found.append(word)
    return list(dict.fromkeys(found))


def fts_query(query: str) -> str:
    """``query`` as an FTS5 expression: each identifier as a phrase, OR each other word (quoted: no syntax)."""
    terms = [" ".join(_WORD.findall(ident.lower())) for ident in identifiers(query)]
    terms += [w for w in _WORD.findall(query.lower()) if w not in _STOP]
    unique = list(dict.fromkeys(t for t in terms if t))
    return " OR ".join(f'"{t}"' for t in unique)


class KeywordIndex:
    def __init__(self, folder: Path):
        self.path = folder / KEYWORDS_FILE
        self._db: sqlite3.Connection | None = None

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, check_same_thread=False)
            self._db.execute(
                "CREATE VIRTUAL TABLE IF NOT EXISTS chunks USING fts5(text, tokenize='unicode61 remove_diacritics 2')"
            )
        return self._db

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def count(self) -> int:
        try:
            return int(self._conn().execute("SELECT count(*) FROM chunks").fetchone()[0])
        except sqlite3.DatabaseError:
            return -1

    def replace(self, remove: Iterable[int], add: Iterable[tuple[int, str]]) -> None:
        """Take out the rows ``remove`` and put in ``add`` (id, text), in one transaction."""
        db = self._conn()
        with db:
            db.executemany("DELETE FROM chunks WHERE rowid = ?", ((int(i),) for i in remove))
            db.executemany("INSERT INTO chunks(rowid, text) VALUES (?, ?)", ((int(i), t) for i, t in add))

    def rebuild(self, rows: Iterable[tuple[int, str]]) -> None:
        """Start again from the chunk list (a missing, corrupt or stale table)."""
        self.close()
        for suffix in ("", "-journal", "-wal", "-shm"):
            Path(str(self.path) + suffix).unlink(missing_ok=True)
        self.replace((), rows)

    def search(self, query: str, k: int) -> list[int]:
        """Chunk ids whose text holds the query's words, best BM25 first."""
        expression = fts_query(query)
        if not expression or k < 1:
            return []
        rows = self._conn().execute(
            "SELECT rowid FROM chunks WHERE chunks MATCH ? ORDER BY bm25(chunks) LIMIT ?", (expression, k)
        )
        return [int(r[0]) for r in rows]
