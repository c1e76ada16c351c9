"""``file_analyzer``: what a file in the session holds, before any code is written for it.

Tables (csv, tsv, xlsx, parquet, json): shape, columns with dtypes, missing values and
distinct counts, a numeric summary, the first rows. Documents (txt, md, pdf, docx, html
and other text): length, outline (headings, pages, tables, lists) and the first
paragraphs. It only reads, in the agent's process, bounded by ``ToolsConfig``
(``analyzer_max_rows``, ``analyzer_max_chars``), and only files inside the session's
workspace or the configured document folders. The workspace is the sandbox's, so files
there are read only as regular files inside it (``sandbox/inside/confined.py``): a link, a FIFO or a
hard link left there is refused, not followed.
"""

from __future__ import annotations

import asyncio
import json
import mimetypes
import os
import re
from pathlib import Path
from typing import IO, Any

from ..config import ToolsConfig
from ..exceptions import DocumentError, UnsafePath
from ..linear_regex import SPACE, linear
from ..sandbox.inside.confined import list_confined, stat_confined
from .base import Tool, ToolContext, ToolInput, ToolResult
from .files import TABLE_SUFFIXES, read_delimited
from .rag.index import Source
from .rag.library import folder_sources
from .rag.loaders import LoadedDocument, is_document, load_document

PREVIEW_ROWS = 5
MAX_COLUMNS_SHOWN = 40
FIRST_PARAGRAPHS = 3
PARAGRAPH_CHARS = 1200
MAX_LISTED_FILES = 30
#: A JSON file that is not JSON Lines is parsed whole only below this size.
MAX_JSON_BYTES = 50_000_000
#: Documents (PDF, Word, HTML) are read whole, so only up to this size.
MAX_DOCUMENT_BYTES = 200_000_000
TABLES = TABLE_SUFFIXES | {".jsonl", ".ndjson"}


class FileAnalyzerTool(Tool):
    name = "file_analyzer"
    description = (
        "Describes one file of the session without changing it: for tables (csv, tsv, xlsx, parquet, json) the shape, "
        "columns, types, missing values, numeric summary and first rows; for documents (txt, md, pdf, docx, html) "
        "the length, outline and first paragraphs. Use it to see what a file holds before analysing it."
    )
    input = ToolInput("file_name", "the file name (as attached, or as it is in the working folder)")

    def __init__(self, config: ToolsConfig | None = None):
        self.config = config or ToolsConfig()

    async def run(self, action_input: str, ctx: ToolContext) -> ToolResult:
        workspace, folders = self.workspace(ctx), self.folders()
        if workspace is None and not folders:
            return ToolResult("This session has no working folder, so there are no files to analyse.", success=False)
        name = action_input.strip().strip("`'\"").strip()
        if name and ctx.fetch_named is not None:  # a file of the notebook's folder: copied in, confined, first
            await ctx.fetch_named(name)
        source = find_source(name, workspace, folders) if name else None
        if source is None:
            listing = ", ".join(p.name for p in _listing(workspace, folders)) or "(none)"
            what = f"No file named {name!r}" if name else "No file name was given"
            return ToolResult(f"{what} in the working folder. Files there: {listing}.", success=False)
        text = await asyncio.to_thread(self.analyse, source)
        return ToolResult(text[: ctx.config.max_output_chars], data={"path": str(source.path)})

    @staticmethod
    def workspace(ctx: ToolContext) -> Path | None:
        if ctx.sandbox is not None and ctx.sandbox.workspace:
            return Path(os.path.abspath(ctx.sandbox.workspace))
        return None

    def folders(self) -> list[Path]:
        return [Path(f).expanduser().resolve() for f in self.config.rag_folders if Path(f).expanduser().is_dir()]

    def analyse(self, path: Path | Source) -> str:
        """The description of one file (any path, or a ``Source`` inside the workspace)."""
        source = path if isinstance(path, Source) else Source(str(path), Path(path))
        try:
            with source.open() as handle:
                return self._describe(handle, source.path, os.fstat(handle.fileno()).st_size)
        except UnsafePath as exc:
            return str(exc)
        except OSError as exc:
            return f"{source.path.name}: could not be read ({exc.strerror or exc})."

    def _describe(self, handle: IO[bytes], path: Path, size: int) -> str:
        head = f"{path.name} ({size:,} bytes)"
        suffix = path.suffix.lower()
        if suffix in TABLES:
            try:
                frame, facts = self._read_table(handle, suffix, size)
            except Exception as exc:  # noqa: BLE001  # pandas, openpyxl and pyarrow raise anything on a malformed file
                return f"{head}: could not be read as {suffix.lstrip('.')} ({type(exc).__name__}: {str(exc)[:200]})."
            if frame is None:
                return f"{head}: JSON, not a table.\n{facts.get('structure', '')}".rstrip()
            return _describe_table(frame, facts, head)
        if is_document(path) or _looks_like_text(handle):
            if is_document(path) and size > MAX_DOCUMENT_BYTES:
                return f"{head}: larger than {MAX_DOCUMENT_BYTES / 1e6:g} MB, too large to analyse."
            try:
                doc = (
                    load_document(path, max_chars=self.config.analyzer_max_chars, data=handle.read())
                    if is_document(path)
                    else _plain(handle, self.config.analyzer_max_chars)
                )
            except DocumentError as exc:
                return f"{head}: {exc}."
            return _describe_document(doc, head)
        kind = mimetypes.guess_type(path.name)[0] or "unknown type"
        return f"{head}: a binary file ({kind}); file_analyzer describes tables and text documents only."

    # --- reading tables --------------------------------------------------------------------
    def _read_table(self, handle: IO[bytes], suffix: str, size: int) -> tuple[Any, dict[str, Any]]:
        """At most ``analyzer_max_rows`` rows, and what is known of the rest (``total_rows``, ``partial``)."""
        import pandas as pd

        limit = self.config.analyzer_max_rows
        facts: dict[str, Any] = {}
        if suffix in (".csv", ".tsv"):
            frame = read_delimited(handle, suffix, limit + 1)
        elif suffix in (".xlsx", ".xls"):
            if size > MAX_DOCUMENT_BYTES:  # a workbook is read whole
                raise ValueError(f"larger than {MAX_DOCUMENT_BYTES / 1e6:g} MB")
            with pd.ExcelFile(handle) as book:
                facts["sheets"] = [str(s) for s in book.sheet_names]
                frame = pd.read_excel(book, sheet_name=book.sheet_names[0], nrows=limit + 1)
        elif suffix == ".parquet":
            import pyarrow.parquet as pq

            parquet = pq.ParquetFile(handle)
            batch = next(parquet.iter_batches(batch_size=limit), None)
            frame = batch.to_pandas() if batch is not None else parquet.schema_arrow.empty_table().to_pandas()
            total = parquet.metadata.num_rows
            return frame, {"total_rows": f"{total:,}", "partial": total > len(frame)}
        else:
            frame, facts = _read_json(handle, suffix, limit, size)
            if frame is None:
                return None, facts
        if len(frame) > limit:
            frame, facts["partial"] = frame.iloc[:limit], True
            facts["total_rows"] = f"more than {limit:,}"
        return frame, facts


def _read_json(handle: IO[bytes], suffix: str, limit: int, size: int) -> tuple[Any, dict[str, Any]]:
    """JSON Lines, a list of records, or one object holding a list of records; else an outline of the JSON."""
    import pandas as pd

    if suffix == ".json" and size <= MAX_JSON_BYTES:
        try:
            data = json.loads(handle.read(MAX_JSON_BYTES + 1).decode("utf-8"))
        except json.JSONDecodeError:
            handle.seek(0)  # several documents: JSON Lines after all
        else:
            if isinstance(data, list) and data and all(isinstance(item, dict) for item in data[:100]):
                return pd.json_normalize(data[: limit + 1], max_level=1), {}
            if isinstance(data, dict):
                lists = [k for k, v in data.items() if isinstance(v, list) and v and isinstance(v[0], dict)]
                if len(lists) == 1:
                    frame = pd.json_normalize(data[lists[0]][: limit + 1], max_level=1)
                    return frame, {"records_under": lists[0]}
            return None, {"structure": _json_outline(data)}
    return pd.read_json(handle, lines=True, nrows=limit + 1), {}


def _describe_table(frame: Any, facts: dict[str, Any], head: str) -> str:
    import pandas as pd

    rows = facts.get("total_rows") or f"{len(frame):,}"
    lines = [f"{head}: table, {rows} rows x {frame.shape[1]} columns."]
    if facts.get("records_under"):
        lines.append(f"The rows are the records under the key {facts['records_under']!r}.")
    if facts.get("sheets"):
        lines.append(f"Sheets: {', '.join(facts['sheets'])} (described: {facts['sheets'][0]}).")
    if facts.get("partial"):
        lines.append(f"Statistics below are over the first {len(frame):,} rows.")
    shown = frame.iloc[:, :MAX_COLUMNS_SHOWN]
    missing = shown.isna().sum()
    columns = pd.DataFrame(
        {
            "dtype": shown.dtypes.astype(str),
            "missing": missing,
            "missing %": (100 * missing / max(1, len(shown))).round(1),
            "distinct": [_distinct(shown[c]) for c in shown.columns],
        }
    )
    lines += ["Columns:", _indent(columns.to_string())]
    if frame.shape[1] > MAX_COLUMNS_SHOWN:
        lines.append(f"  ... and {frame.shape[1] - MAX_COLUMNS_SHOWN} more columns.")
    total_missing = int(frame.isna().sum().sum())
    lines.append(f"Missing values: {total_missing:,} in total." if total_missing else "Missing values: none.")
    numeric = shown.select_dtypes("number")
    if not numeric.empty:
        summary = numeric.describe().T[["count", "mean", "std", "min", "50%", "max"]].rename(columns={"50%": "median"})
        lines += ["Numeric summary:", _indent(summary.to_string(float_format=lambda v: f"{v:.4g}"))]
    preview = frame.head(PREVIEW_ROWS).to_string(max_colwidth=40, max_cols=20)
    lines += [f"First {min(PREVIEW_ROWS, len(frame))} rows:", _indent(preview)]
    return "\n".join(lines)


# --- documents ------------------------------------------------------------------------------
# RE2: the document is the user's (``^\s*`` crosses lines, so blank lines made ``re`` quadratic).
_PARAGRAPH_BREAK = linear(rf"\n[{SPACE}]*\n")
_LIST_ITEM = linear(rf"(?m)^[{SPACE}]*(?:[-*+]|\p{{Nd}}+[.)])[{SPACE}]+[^{SPACE}]")


def _structure(doc: LoadedDocument, paragraphs: list[str]) -> list[str]:
    """What the document is made of, counted: "12 pages", "3 tables", ...; only what it has."""
    tables = doc.meta.get("tables", 0) or sum(1 for block in paragraphs if _is_markdown_table(block))
    counts = [
        (len(doc.meta.get("headings") or []), "headings"),
        (tables, "tables"),
        (len(_LIST_ITEM.findall(doc.text)), "list items"),
        (doc.text.count("```") // 2, "code blocks"),
    ]
    pages = [f"{doc.meta['pages']} pages"] if "pages" in doc.meta else []  # said even when none: a scan, say
    return pages + [f"{count} {what}" for count, what in counts if count]


def _describe_document(doc: LoadedDocument, head: str) -> str:
    text = doc.text
    paragraphs = [p.strip() for p in _PARAGRAPH_BREAK.split(text) if p.strip()]
    words = len(text.split())
    lines = [f"{head}: {doc.kind} document, {len(text):,} characters, {words:,} words, {len(paragraphs):,} paragraphs."]
    if doc.meta.get("truncated"):
        lines.append(f"(Only the first {len(text):,} characters were read.)")
    if doc.meta.get("title"):
        lines.append(f"Title: {doc.meta['title']}")
    headings = doc.meta.get("headings") or []
    structure = _structure(doc, paragraphs)
    if structure:
        lines.append("Structure: " + ", ".join(structure) + ".")
    if headings:
        lines += ["Outline:", *(f"  {h}" for h in headings[:25])]
        if len(headings) > 25:
            lines.append(f"  ... and {len(headings) - 25} more headings.")
    body = [p for p in paragraphs if not re.fullmatch(r"#{1,6} .*", p)][:FIRST_PARAGRAPHS]
    if body:
        lines.append("First paragraphs:")
        for paragraph in body:
            clipped = paragraph if len(paragraph) <= PARAGRAPH_CHARS else paragraph[:PARAGRAPH_CHARS] + " ..."
            lines.append(_indent(clipped))
    elif not text.strip():
        lines.append("It holds no text (for a PDF: a scan or images only).")
    return "\n".join(lines)


def _plain(handle: IO[bytes], max_chars: int) -> LoadedDocument:
    text = handle.read(4 * (max_chars + 1)).decode("utf-8", errors="replace")  # UTF-8: <= 4 bytes a character
    doc = LoadedDocument(text[:max_chars], "text", {})
    if len(text) > max_chars:
        doc.meta["truncated"] = True
    return doc


def _looks_like_text(handle: IO[bytes]) -> bool:
    sample = handle.read(4096)
    handle.seek(0)
    if b"\x00" in sample:
        return False
    try:
        sample.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start > len(sample) - 4  # a multi-byte character cut at the sample's end
    return True


def _is_markdown_table(block: str) -> bool:
    rows = block.splitlines()
    return len(rows) >= 2 and all(r.strip().startswith("|") for r in rows[:2]) and "---" in rows[1]


def _json_outline(data: Any, depth: int = 0) -> str:
    pad = "  " * depth
    if isinstance(data, dict):
        parts = [f"{pad}object with {len(data)} keys"]
        if depth < 2:
            for key, value in list(data.items())[:20]:
                parts.append(f"{pad}  {key}: " + _json_outline(value, depth + 2).strip())
        return "\n".join(parts)
    if isinstance(data, list):
        inner = _json_outline(data[0], depth + 1).strip() if data and depth < 3 else ""
        return f"{pad}list of {len(data)}" + (f", first: {inner}" if inner else "")
    return f"{pad}{type(data).__name__}"


def _distinct(column: Any) -> Any:
    try:
        return int(column.nunique(dropna=True))
    except TypeError:  # lists or dicts in the cells (JSON)
        return "n/a"


def _indent(text: str) -> str:
    return "\n".join("  " + line for line in text.splitlines())


# --- finding the file -----------------------------------------------------------------------
def find_source(name: str, workspace: Path | None, folders: list[Path]) -> Source | None:
    """``name`` in the workspace (confined) or one of ``folders``; relative paths first, then by file name."""
    entries = _workspace_files(workspace)
    candidate = Path(name).expanduser()
    if workspace is not None:
        path = Path(os.path.abspath(candidate if candidate.is_absolute() else workspace / candidate))
        wanted_rel = path.relative_to(workspace).as_posix() if path.is_relative_to(workspace) else None
        for entry in entries:
            if entry.relpath == wanted_rel:
                return _in_workspace(workspace, entry.relpath)
    found = find_file(name, folders, by_name=False)
    if found is not None:
        return found
    wanted = candidate.name.casefold()
    for entry in entries:
        if workspace is not None and entry.name.casefold() == wanted and not _in_dot_folder(entry.relpath):
            return _in_workspace(workspace, entry.relpath)
    return find_file(name, folders)


def _in_workspace(workspace: Path, relpath: str) -> Source:
    return Source(str(workspace / relpath), workspace / relpath, workspace, relpath)


def _workspace_files(workspace: Path | None) -> list[Any]:
    """Entries of the workspace; links, FIFOs and the like among them are marked refused."""
    if workspace is None:
        return []
    try:
        return list_confined(workspace, recursive=True, hidden=True, limit=10_000)
    except OSError:
        return []


def _in_dot_folder(relpath: str) -> bool:
    return any(part.startswith(".") for part in relpath.split("/")[:-1])


def find_file(name: str, roots: list[Path], *, by_name: bool = True) -> Source | None:
    """``name`` inside one of ``roots`` (relative path first, then by file name anywhere below); never outside
    them, and never through a link: a configured folder is read as a learned one is (``folder_sources``)."""
    candidate = Path(name).expanduser()
    for root in roots:
        path = Path(os.path.abspath(candidate if candidate.is_absolute() else root / candidate))
        if path != root and path.is_relative_to(root):
            relpath = path.relative_to(root).as_posix()
            try:
                stat_confined(root, relpath)
            except UnsafePath:
                pass  # there, but a link, a pipe...: found, and ``analyse`` says why it is not read
            except OSError:
                continue
            return Source(str(path), path, root, relpath)
    if not by_name:
        return None
    wanted = candidate.name.casefold()
    for root in roots:
        for source in _sources_under(root):
            if source.path.name.casefold() == wanted:
                return source
    return None


def _sources_under(root: Path) -> list[Source]:
    try:
        return folder_sources(root)[0]
    except OSError:
        return []


def _listing(workspace: Path | None, folders: list[Path]) -> list[Path]:
    found = [
        Path(e.relpath)
        for e in _workspace_files(workspace)
        if not e.refused and not any(p.startswith(".") for p in e.relpath.split("/"))
    ][:MAX_LISTED_FILES]
    for root in folders:
        found += [source.path for source in _sources_under(root)]
        if len(found) >= MAX_LISTED_FILES:
            return found[:MAX_LISTED_FILES]
    return found
