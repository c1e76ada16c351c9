"""Attached files: copy them into the session's workspace and describe them for the model."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import IO, Any

from ..sandbox.inside.confined import open_confined, write_confined

TABLE_SUFFIXES = {".csv", ".tsv", ".xlsx", ".xls", ".parquet", ".json"}
PREVIEW_ROWS = 3


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


def attach(paths: list[str], workspace: str, folder: str = "") -> list[str]:
    """Copy files into the workspace (see ``workspace_name``); returns their paths relative to it. Missing files
    are an error.

    The workspace is the sandbox's: whatever it left under a name (a link to one of your files, a FIFO, a
    link in place of a folder on the way) is replaced by the copy, never written through.
    """
    target = Path(workspace)
    target.mkdir(parents=True, exist_ok=True)
    copies = []
    for name in paths:
        src = Path(name).expanduser()
        if not src.is_file():
            raise FileNotFoundError(f"Attached file {name} does not exist (looked in {src.resolve().parent}).")
        rel = workspace_name(src, workspace, folder)
        if os.path.abspath(src) != os.path.abspath(target / rel):  # a file already in the workspace stays as it is
            with open(src, "rb") as fh:
                st = os.fstat(fh.fileno())
                write_confined(target, rel, lambda out: shutil.copyfileobj(fh, out, 2**20),
                               mode=st.st_mode & 0o777, times_ns=(st.st_atime_ns, st.st_mtime_ns))
        copies.append(rel)
    return copies


def describe_file(workspace: str | os.PathLike[str], relpath: str) -> str:
    """One line (or a few) the model can plan with: the path to open it by, its size, and for tables the columns,
    dtypes and first rows.

    ``relpath`` is in the workspace, so it is read as the sandbox may have left it: a regular file or nothing.
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
        try:
            frame = _read_sample(fh, suffix)
        except Exception as exc:  # a file the model should still hear about, with why it could not be previewed
            return f"{head}; could not be previewed ({type(exc).__name__}: {str(exc)[:120]})"
    if frame is None:
        return head
    dtypes = ", ".join(f"{c} ({t})" for c, t in frame.dtypes.astype(str).items())
    preview = frame.head(PREVIEW_ROWS).to_string(max_colwidth=40, max_cols=20)
    return f"{head}; columns: {dtypes}\n  first rows:\n" + "\n".join("    " + line for line in preview.splitlines())


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


def read_delimited(fh: IO[bytes], suffix: str, nrows: int) -> Any:  # a pandas.DataFrame
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


def _read_sample(fh: IO[bytes], suffix: str) -> Any:  # a pandas.DataFrame, or None
    import pandas as pd

    if suffix in (".csv", ".tsv"):
        return read_delimited(fh, suffix, 200)
    if suffix in (".xlsx", ".xls"):
        return pd.read_excel(fh, nrows=200)
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        batch = next(pq.ParquetFile(fh).iter_batches(batch_size=200), None)  # not the whole file
        return batch.to_pandas() if batch is not None else None
    if suffix == ".json":
        try:
            return pd.read_json(fh, lines=True, nrows=200)
        except ValueError:
            return None
    return None
