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


def attach(paths: list[str], workspace: str) -> list[Path]:
    """Copy files into the workspace (keeping their names); returns the copies. Missing files are an error.

    The workspace is the sandbox's: whatever it left under a name (a link to one of your files, a FIFO)
    is replaced by the copy, never written through.
    """
    target = Path(workspace)
    target.mkdir(parents=True, exist_ok=True)
    copies = []
    for name in paths:
        src = Path(name).expanduser()
        if not src.is_file():
            raise FileNotFoundError(f"Attached file {name} does not exist (looked in {src.resolve().parent}).")
        dst = target / src.name
        if os.path.abspath(src) != os.path.abspath(dst):  # a file already in the workspace stays as it is
            with open(src, "rb") as fh:
                st = os.fstat(fh.fileno())
                write_confined(target, src.name, lambda out: shutil.copyfileobj(fh, out, 2**20),
                               mode=st.st_mode & 0o777, times_ns=(st.st_atime_ns, st.st_mtime_ns))
        copies.append(dst)
    return copies


def describe_file(path: Path) -> str:
    """One line (or a few) the model can plan with: name, size, and for tables the columns, dtypes and first rows.

    ``path`` is in the workspace, so it is read as the sandbox may have left it: a regular file or nothing.
    """
    try:
        fh = open_confined(path.parent, path.name)
    except OSError as exc:
        return f"{path.name}: could not be read ({getattr(exc, 'reason', '') or exc})"
    with fh:
        size = os.fstat(fh.fileno()).st_size
        head = f"{path.name} ({size:,} bytes)"
        suffix = path.suffix.lower()
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
