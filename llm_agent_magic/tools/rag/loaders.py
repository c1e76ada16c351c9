"""Documents to plain text: txt/md, csv/tsv, pdf (pypdf), docx (python-docx), html (stdlib parser), ipynb.

Where a format has pages (PDF) or cells (notebooks), ``meta["sections"]`` lists where each
starts in the text, ``[(offset, "page 2"), ...]``, so a passage can say where it came from.

Headings come out as markdown ``#`` lines whatever the format, so chunks keep them and
``file_analyzer`` can show a document's outline. A file that cannot be read raises
`DocumentError` with the reason; callers skip it with a note instead of failing.
"""

from __future__ import annotations

import csv
import io
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from ...exceptions import DocumentError, UnsafePath
from ...linear_regex import SPACE, linear
from ...sandbox.inside.confined import read_confined

TEXT_SUFFIXES = {".txt", ".md", ".markdown", ".rst", ".text"}
TABLE_TEXT_SUFFIXES = {".csv", ".tsv"}
SUPPORTED_SUFFIXES = TEXT_SUFFIXES | TABLE_TEXT_SUFFIXES | {".pdf", ".docx", ".html", ".htm", ".ipynb"}
#: The largest file ``load_document`` reads itself (callers that read the bytes bound them their own way).
MAX_DOCUMENT_BYTES = 2**30
#: Rows of a CSV turned into text; a data file bigger than this is for python_coder, not retrieval.
MAX_TABLE_ROWS = 2000


@dataclass
class LoadedDocument:
    text: str
    kind: str
    #: Format-specific facts: pages, headings, tables, title, rows, truncated, sections.
    meta: dict[str, Any] = field(default_factory=dict)


def is_document(path: Path) -> bool:
    return path.suffix.lower() in SUPPORTED_SUFFIXES


def load_document(path: Path, *, max_chars: int | None = None, data: bytes | None = None) -> LoadedDocument:
    """The text of ``path`` (or of ``data``, its bytes, already read: the suffix of ``path`` says the type);
    `DocumentError` when the file cannot be read as its suffix says. ``path`` itself is read as every
    file is (``confined.read_confined``): not through a link, a regular file, at most ``MAX_DOCUMENT_BYTES``."""
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise DocumentError(f"unsupported file type {suffix or '(none)'}")
    try:
        raw = data if data is not None else read_confined(os.path.realpath(path.parent), path.name, MAX_DOCUMENT_BYTES)
        doc = _parse(raw, suffix)
    except DocumentError:
        raise
    except UnsafePath as exc:
        raise DocumentError(f"not read: {exc.reason}") from None
    except OSError as exc:
        raise DocumentError(f"could not be read ({exc.strerror or exc})") from None
    except Exception as exc:  # noqa: BLE001  # third-party parsers raise anything on a malformed file
        raise DocumentError(f"not a readable {suffix[1:].upper()} file ({type(exc).__name__}: {str(exc)[:160]})") from None
    if doc.kind in ("text", "markdown"):
        doc.meta.setdefault("headings", _markdown_headings(doc.text))
    if max_chars is not None and len(doc.text) > max_chars:
        doc.text, doc.meta["truncated"] = doc.text[:max_chars], True
    return doc


def _parse(raw: bytes, suffix: str) -> LoadedDocument:
    """A file's bytes read as its suffix says."""
    if suffix == ".pdf":
        return _pdf(raw)
    if suffix == ".docx":
        return _docx(raw)
    if suffix == ".ipynb":
        return _notebook(_text(raw))
    if suffix in (".html", ".htm"):
        return _html(_text(raw))
    if suffix in TABLE_TEXT_SUFFIXES:
        return _table(_text(raw), "\t" if suffix == ".tsv" else ",")
    return LoadedDocument(_text(raw), "markdown" if suffix in (".md", ".markdown") else "text")


def _text(data: bytes) -> str:
    if b"\x00" in data[:4096]:
        raise DocumentError("looks binary, not text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("latin-1")


# RE2: a file the user points at (a heading followed by a long run of spaces made ``re`` quadratic).
_MD_HEADING = linear(rf"(?m)^(#{{1,6}})[{SPACE}]+(.+?)[{SPACE}]*#*[{SPACE}]*$")


def _markdown_headings(text: str) -> list[str]:
    return [f"{'#' * len(m.group(1))} {m.group(2)}" for m in _MD_HEADING.finditer(text)][:200]


def _pdf(data: bytes) -> LoadedDocument:
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(data), strict=False)
    if reader.is_encrypted and not reader.decrypt(""):
        raise DocumentError("is an encrypted PDF")
    pages = [(page.extract_text() or "").strip() for page in reader.pages]
    title = reader.metadata.title if reader.metadata is not None else None
    text, sections = _joined([(f"page {n}", p) for n, p in enumerate(pages, 1)])
    meta: dict[str, Any] = {"pages": len(pages), "headings": [], "sections": sections}
    if title:
        meta["title"] = str(title)
    return LoadedDocument(text, "pdf", meta)


def _joined(parts: list[tuple[str, str]]) -> tuple[str, list[tuple[int, str]]]:
    """The non-empty parts joined by blank lines, and where each starts (offset, label)."""
    pieces: list[str] = []
    sections: list[tuple[int, str]] = []
    offset = 0
    for label, body in parts:
        if not body:
            continue
        if pieces:
            offset += 2
        sections.append((offset, label))
        pieces.append(body)
        offset += len(body)
    return "\n\n".join(pieces), sections


def _notebook(source: str) -> LoadedDocument:
    """The cells' sources (markdown and code; outputs left out: they are results, often large), numbered
    as JupyterLab shows them, from 1."""
    import json

    try:
        notebook = json.loads(source)
    except ValueError as exc:
        raise DocumentError(f"not a readable IPYNB file (not JSON: {exc})") from None
    cells = notebook.get("cells") if isinstance(notebook, dict) else None
    if not isinstance(cells, list):
        raise DocumentError("not a readable IPYNB file (no list of cells)")
    parts = []
    for n, cell in enumerate(cells, 1):
        body = cell.get("source", "") if isinstance(cell, dict) else ""
        text = "".join(str(line) for line in body) if isinstance(body, list) else str(body)
        parts.append((f"cell {n}", text.strip()))
    text, sections = _joined(parts)
    return LoadedDocument(text, "notebook", {"cells": len(cells), "sections": sections, "headings": _markdown_headings(text)})


def _docx(data: bytes) -> LoadedDocument:
    import docx
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    document = docx.Document(io.BytesIO(data))
    blocks: list[str] = []
    headings: list[str] = []
    tables = 0
    inner: Iterable[Paragraph | Table] = (
        document.iter_inner_content()
        if hasattr(document, "iter_inner_content")
        else [
            *document.paragraphs,
            *document.tables,
        ]
    )
    for item in inner:
        if isinstance(item, Table):  # a table: one line per row, cells separated by " | "
            tables += 1
            rows = [" | ".join(" ".join(c.text.split()) for c in row.cells) for row in item.rows]
            blocks.append("\n".join(rows))
            continue
        text = item.text.strip()
        if not text:
            continue
        level = _heading_level(item.style.name if item.style is not None else "")
        if level:
            text = f"{'#' * level} {text}"
            headings.append(text)
        blocks.append(text)
    title = document.core_properties.title or ""
    meta: dict[str, Any] = {"headings": headings, "tables": tables, "paragraphs": len(blocks) - tables}
    if title:
        meta["title"] = title
    return LoadedDocument("\n\n".join(blocks), "docx", meta)


def _heading_level(style: str) -> int:
    if style == "Title":
        return 1
    match = re.fullmatch(r"Heading (\d)", style)
    return min(6, int(match.group(1))) if match else 0


class _HTMLText(HTMLParser):
    BLOCKS = {"p", "div", "section", "article", "li", "tr", "br", "table", "ul", "ol", "pre", "blockquote", "header", "footer"}
    SKIP = {"script", "style", "noscript", "template", "svg"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.headings: list[str] = []
        self.title = ""
        self._skip = 0
        self._in_title = False
        self._heading: int = 0
        self._heading_text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.SKIP:
            self._skip += 1
        elif tag == "title":
            self._in_title = True
        elif re.fullmatch(r"h[1-6]", tag):
            self._heading = int(tag[1])
            self._heading_text = []
            self.parts.append("\n\n" + "#" * self._heading + " ")
        elif tag in self.BLOCKS:
            self.parts.append("\n\n" if tag in ("p", "div", "section", "article", "table") else "\n")
        elif tag in ("td", "th"):
            self.parts.append(" | ")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIP:
            self._skip = max(0, self._skip - 1)
        elif tag == "title":
            self._in_title = False
        elif self._heading and tag == f"h{self._heading}":
            self.headings.append("#" * self._heading + " " + " ".join("".join(self._heading_text).split()))
            self._heading = 0
            self.parts.append("\n\n")

    def handle_data(self, data: str) -> None:
        if self._skip:
            return
        if self._in_title:
            self.title += data
            return
        if self._heading:
            self._heading_text.append(data)
        self.parts.append(data)


def _html(source: str) -> LoadedDocument:
    parser = _HTMLText()
    parser.feed(source)
    parser.close()
    raw = "".join(parser.parts)
    lines = [" ".join(line.split()) for line in raw.split("\n")]
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
    meta: dict[str, Any] = {"headings": parser.headings}
    if parser.title.strip():
        meta["title"] = " ".join(parser.title.split())
    return LoadedDocument(text, "html", meta)


def _table(source: str, delimiter: str) -> LoadedDocument:
    """Rows as self-describing lines ("column: value; ..."), so any chunk of them stands on its own."""
    reader = csv.reader(io.StringIO(source), delimiter=delimiter)
    header = next(reader, None)
    if not header:
        return LoadedDocument("", "table", {"rows": 0, "columns": []})
    header = [h.strip() or f"column {i + 1}" for i, h in enumerate(header)]
    lines = [f"Columns: {', '.join(header)}"]
    rows = 0
    for row in reader:
        if rows >= MAX_TABLE_ROWS:
            return LoadedDocument("\n".join(lines), "table", {"rows": rows, "columns": header, "truncated": True})
        if not any(cell.strip() for cell in row):
            continue
        lines.append("; ".join(f"{h}: {v.strip()}" for h, v in zip(header, row, strict=False)))
        rows += 1
    return LoadedDocument("\n".join(lines), "table", {"rows": rows, "columns": header})
