"""Attached files: copy them into the session's workspace and describe them for the model."""

from __future__ import annotations

import shutil
from pathlib import Path

TABLE_SUFFIXES = {".csv", ".tsv", ".xlsx", ".xls", ".parquet", ".json"}
PREVIEW_ROWS = 3


def attach(paths: list[str], workspace: str) -> list[Path]:
    """Copy files into the workspace (keeping their names); returns the copies. Missing files are an error."""
    target = Path(workspace)
    target.mkdir(parents=True, exist_ok=True)
    copies = []
    for name in paths:
        src = Path(name).expanduser()
        if not src.is_file():
            raise FileNotFoundError(f"Attached file {name} does not exist (looked in {src.resolve().parent}).")
        dst = target / src.name
        if src.resolve() != dst.resolve():
            shutil.copy2(src, dst)
        copies.append(dst)
    return copies


def describe_file(path: Path) -> str:
    """One line (or a few) the model can plan with: name, size, and for tables the columns, dtypes and first rows."""
    size = path.stat().st_size
    head = f"{path.name} ({size:,} bytes)"
    suffix = path.suffix.lower()
    if suffix not in TABLE_SUFFIXES:
        return head
    try:
        frame = _read_sample(path, suffix)
    except Exception as exc:  # a file the model should still hear about, with why it could not be previewed
        return f"{head}; could not be previewed ({type(exc).__name__}: {str(exc)[:120]})"
    if frame is None:
        return head
    dtypes = ", ".join(f"{c} ({t})" for c, t in frame.dtypes.astype(str).items())
    preview = frame.head(PREVIEW_ROWS).to_string(max_colwidth=40, max_cols=20)
    return f"{head}; columns: {dtypes}\n  first rows:\n" + "\n".join("    " + line for line in preview.splitlines())


def _read_sample(path: Path, suffix: str):  # -> pandas.DataFrame | None
    import pandas as pd

    if suffix in (".csv", ".tsv"):
        return pd.read_csv(path, nrows=200, sep="\t" if suffix == ".tsv" else ",", engine="python" if suffix == ".tsv" else "c")
    if suffix in (".xlsx", ".xls"):
        return pd.read_excel(path, nrows=200)
    if suffix == ".parquet":
        return pd.read_parquet(path).head(200)
    if suffix == ".json":
        try:
            return pd.read_json(path, lines=True, nrows=200)
        except ValueError:
            return None
    return None
