"""Attached files: copy them into the session's workspace and describe them for the model."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import IO, Any

from ..exceptions import AttachmentRefused, UnsafePath
from ..sandbox.inside.confined import open_confined, write_confined

TABLE_SUFFIXES = {".csv", ".tsv", ".xlsx", ".xls", ".parquet", ".json"}
PREVIEW_ROWS = 3
#: A table up to this size is read whole for its description (exact dtypes, rows, missing values).
WHOLE_TABLE_BYTES = 5_000_000
#: Rows read of a larger table.
SAMPLE_ROWS = 200
#: Columns with missing values named in a description; the rest are counted.
MISSING_LISTED = 20


#: Why attached files are read as they are, for the error that refuses one.
_ONLY_REGULAR = (
    "Attached files are read without following links and only as regular files with one name (a link, or "
    "a hard link, could be any file of yours, such as /proc/self/environ or ~/.ssh/id_rsa). Attach the file "
    "itself: copy it into place (`cp -L` copies what a link you trust points to)."
)
CHUNK = 2**20
#: The largest file attached when the workspace has no quota.
MAX_ATTACHED_BYTES = 16 * 2**30


def attach_limit(quota_mb: float) -> int:
    """The largest file attached, in bytes: what the workspace quota holds (``SandboxConfig.workspace_quota_mb``;
    without a quota, ``MAX_ATTACHED_BYTES``)."""
    return int(quota_mb * 2**20) if quota_mb > 0 else MAX_ATTACHED_BYTES


def workspace_name(src: str | os.PathLike[str], workspace: str, folder: str = "") -> str:
    """Where an attached file goes in the workspace, as a path relative to it (what the model is told).

    A file inside ``folder`` (the notebook's folder) keeps its path relative to it (``data/sales.csv``), so the
    code the agent writes means the same in the sandbox and beside the notebook; a file already in the
    workspace keeps its place; any other file gets its name.
    """
    path = os.path.abspath(src)
    for root in (workspace, folder):
        if not root:
            continue
        rel = os.path.relpath(path, os.path.abspath(root))
        if rel != os.curdir and not rel.startswith(os.pardir + os.sep) and rel != os.pardir and not os.path.isabs(rel):
            return Path(rel).as_posix()
    return os.path.basename(path)


def attach(paths: list[str], workspace: str, folder: str = "", max_bytes: int = MAX_ATTACHED_BYTES) -> list[str]:
    """Copy files into the workspace (see ``workspace_name``); returns their paths relative to it (what the
    model is told).

    Each file is opened without following a link at its name (the folders above it are the user's own,
    resolved as a shell would), accepted only as a regular file with a single name (a FIFO must not hang
    the run, a device or a hard link may be anything), checked on the open descriptor, and copied at most
    ``max_bytes`` long. A missing file is a ``FileNotFoundError``, a refused one ``AttachmentRefused``.
    The workspace is the sandbox's: whatever it left under a name (a link to one of your files, a FIFO, a
    link in place of a folder on the way) is replaced by the copy, never written through.
    """
    target = Path(workspace)
    target.mkdir(parents=True, exist_ok=True)
    copies = []
    for name in paths:
        src = Path(os.path.abspath(Path(name).expanduser()))
        rel = workspace_name(src, workspace, folder)
        if src == Path(os.path.abspath(target / rel)):  # already in the workspace: describe_file reads it, confined
            if not os.path.lexists(src):
                raise FileNotFoundError(f"Attached file {name} does not exist (looked in {src.parent}).")
        else:
            _copy_confined(name, src, target, rel, max_bytes)
        copies.append(rel)
    return copies


def _copy_confined(name: str, src: Path, target: Path, rel: str, max_bytes: int) -> None:
    folder = os.path.realpath(src.parent)
    try:
        fh = open_confined(folder, src.name)
    except FileNotFoundError:
        raise FileNotFoundError(f"Attached file {name} does not exist (looked in {folder}).") from None
    except UnsafePath as exc:
        raise AttachmentRefused(name, exc.reason, _ONLY_REGULAR) from None
    except PermissionError:
        raise AttachmentRefused(name, "permission denied", "Check that you may read the file.") from None
    with fh:
        st = os.fstat(fh.fileno())
        too_large = AttachmentRefused(
            name,
            f"it is larger than the {max_bytes:,} bytes allowed",
            "Attach a smaller file (a sample of it), or raise SandboxConfig.workspace_quota_mb.",
        )
        if st.st_size > max_bytes:
            raise too_large

        def copy(out: IO[bytes]) -> None:
            left = max_bytes + 1  # the bound holds for a file that grows while it is copied
            while left > 0 and (chunk := fh.read(min(CHUNK, left))):
                out.write(chunk)
                left -= len(chunk)
            if left <= 0:
                raise too_large

        write_confined(target, rel, copy, mode=st.st_mode & 0o777, times_ns=(st.st_atime_ns, st.st_mtime_ns))


def describe_file(workspace: str | os.PathLike[str], relpath: str) -> str:
    """A few lines the model can plan with: the path to open it by, its size, and for tables the columns and
    dtypes, the row count, the missing values per column and the first rows.

    A table up to ``WHOLE_TABLE_BYTES`` is read whole, so dtypes, rows and missing values are the file's; a
    larger one only in its first ``SAMPLE_ROWS`` rows (never whole: it is read in this process), and the
    description says so. ``relpath`` is in the workspace, so it is read as the sandbox may have left it: a
    regular file or nothing.
    """
    try:
        fh = open_confined(workspace, relpath)
    except OSError as exc:
        return f"{relpath}: could not be read ({getattr(exc, 'reason', '') or exc})"
    with fh:
        size = os.fstat(fh.fileno()).st_size
        head = f"{relpath} ({size:,} bytes)"
        suffix = Path(relpath).suffix.lower()
        if suffix not in TABLE_SUFFIXES:
            return head
        whole = size <= WHOLE_TABLE_BYTES
        try:
            frame, total = _read_table(fh, suffix, whole)
        except Exception as exc:  # noqa: BLE001  # a file the model should still hear about, with why it could not be previewed
            return f"{head}; could not be previewed ({type(exc).__name__}: {str(exc)[:120]})"
    if frame is None:
        return head
    dtypes = ", ".join(f"{c} ({t})" for c, t in frame.dtypes.astype(str).items())
    preview = frame.head(PREVIEW_ROWS).to_string(max_colwidth=40, max_cols=20)
    lines = [f"{head}; columns: {dtypes}", "  " + _shape_and_missing(frame, whole, total), "  first rows:"]
    return "\n".join(lines + ["    " + line for line in preview.splitlines()])


def _shape_and_missing(frame: Any, whole: bool, total: int | None) -> str:
    """``1,234 rows; missing values: price 3, region 1`` (or ``none``), saying when only a sample was read."""
    missing = {str(c): int(n) for c, n in frame.isna().sum().items() if n}
    listed = ", ".join(f"{c} {n:,}" for c, n in list(missing.items())[:MISSING_LISTED]) or "none"
    if len(missing) > MISSING_LISTED:
        listed += f" (and {len(missing) - MISSING_LISTED} more columns)"
    if whole:
        return f"{len(frame):,} rows; missing values: {listed}"
    rows = f"{total:,} rows" if total is not None else f"more than {len(frame):,} rows (too large to count here)"
    return (
        f"{rows}; dtypes and missing values from the first {len(frame):,} rows only (the file is larger than "
        f"{WHOLE_TABLE_BYTES / 1e6:g} MB); missing values there: {listed}"
    )


#: Delimiters a ``.csv`` may use instead of a comma (Excel in much of Europe writes ``;``).
_OTHER_DELIMITERS = (";", "\t", "|")


def _delimiter(head: bytes, suffix: str) -> str:
    if suffix == ".tsv":
        return "\t"
    first = re.split(rb"\r\n|\r|\n", head, maxsplit=1)[0].decode("latin-1")
    if "," in first:
        return ","
    counts = {d: first.count(d) for d in _OTHER_DELIMITERS}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def read_delimited(fh: IO[bytes], suffix: str, nrows: int | None) -> Any:  # a pandas.DataFrame
    """A CSV or TSV as real-world files come: UTF-8 with or without a byte-order mark, else Latin-1; a
    header without commas but with ``;``, tabs or ``|`` split on those; any line ends (pandas reads
    CR-only ones too)."""
    import pandas as pd

    start = fh.tell()
    head = fh.read(64 * 1024)
    fh.seek(start)
    sep = _delimiter(head, suffix)
    engine = "python" if sep == "\t" else "c"
    try:
        return pd.read_csv(fh, nrows=nrows, sep=sep, engine=engine, encoding="utf-8-sig")
    except UnicodeDecodeError:  # Latin-1 decodes any byte: the text may be off, the table is there
        fh.seek(start)
        return pd.read_csv(fh, nrows=nrows, sep=sep, engine=engine, encoding="latin-1")


def _read_table(fh: IO[bytes], suffix: str, whole: bool) -> tuple[Any, int | None]:
    """(a pandas.DataFrame or None, the file's row count when known without reading it all): the whole
    table, or its first ``SAMPLE_ROWS`` rows."""
    import pandas as pd

    nrows = None if whole else SAMPLE_ROWS
    if suffix in (".csv", ".tsv"):
        return read_delimited(fh, suffix, nrows), None
    if suffix in (".xlsx", ".xls"):
        return pd.read_excel(fh, nrows=nrows), None
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        parquet = pq.ParquetFile(fh)
        total = parquet.metadata.num_rows
        if whole:
            return parquet.read().to_pandas(), total
        batch = next(parquet.iter_batches(batch_size=SAMPLE_ROWS), None)  # not the whole file
        return (batch.to_pandas() if batch is not None else None), total
    if suffix == ".json":
        try:
            return pd.read_json(fh, lines=True, nrows=nrows), None
        except ValueError:
            return None, None
    return None, None
