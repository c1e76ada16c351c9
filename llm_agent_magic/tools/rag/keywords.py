"""``KeywordIndex``: SQLite FTS5 over a collection's chunks, for the words embeddings blur.

Names, codes and numbers (``ERR_4012``, ``XK-2291-B``, ``v2.3.1``) mean little to an embedding
model but everything to the person asking. The table lives beside the faiss index
(``keywords.sqlite``; rowid = chunk id) in the standard library's sqlite3, ranked by BM25.
It holds nothing the chunk list does not, so one that disagrees with it is rebuilt from it.
"""

from __future__ import annotations

import re
import sqlite3
import unicodedata
from collections.abc import Iterable
from pathlib import Path

KEYWORDS_FILE = "keywords.sqlite"
#: Words of a query ranked by, besides its identifiers: the rarest in the collection. A common word
#: ranks little and costs much (BM25 scores every row holding it).
MAX_WORDS = 6
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


def query_terms(query: str) -> tuple[list[str], list[str]]:
    """The identifiers of ``query`` as FTS5 phrases (their words, lowercased), and its other words."""
    phrases = [" ".join(_WORD.findall(ident.lower())) for ident in identifiers(query)]
    plain = "".join(c for c in unicodedata.normalize("NFKD", query.lower()) if not unicodedata.combining(c))
    words = [w for w in _WORD.findall(plain) if w not in _STOP]  # as the table's tokenizer keeps them
    return list(dict.fromkeys(p for p in phrases if p)), list(dict.fromkeys(words))


def fts_expression(terms: list[str]) -> str:
    """Terms OR-ed, each quoted (so no word is read as FTS5 syntax)."""
    return " OR ".join('"' + t.replace('"', '""') + '"' for t in terms)


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
            # How many chunks hold each word (the table's own index, read per word): picks a query's rarest.
            self._db.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.vocab USING fts5vocab(main, chunks, 'row')")
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
        """Chunk ids whose text holds the query's identifiers or rarest words, best BM25 first."""
        phrases, words = query_terms(query)
        if k < 1 or not (phrases or words):
            return []
        db = self._conn()
        if words:
            marks = ",".join("?" * len(words))
            held = dict(db.execute(f"SELECT term, doc FROM temp.vocab WHERE term IN ({marks})", words).fetchall())
            words = sorted((w for w in words if held.get(w)), key=lambda w: held[w])[:MAX_WORDS]
        expression = fts_expression(phrases + words)
        if not expression:
            return []
        rows = db.execute("SELECT rowid FROM chunks WHERE chunks MATCH ? ORDER BY bm25(chunks) LIMIT ?", (expression, k))
        return [int(r[0]) for r in rows]
