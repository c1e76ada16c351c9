"""Reading snapshots back: ``load`` one variable (the magic's ``%agent pull``, ``load_variable``) or
``restore_into`` a namespace (the sandbox kernel after a start or a restart).

The snapshots were written by the sandbox, so they are read as hostile input: only through the
checked catalog (``catalog.py``), only each variable's own file, through ``confined`` (a regular file
inside the folder, size-capped, never a link, FIFO or device), and with rows and bytes checked from
the file's own metadata (parquet footer, .npy header) against limits before anything large is read.

Standard library only at module level: loaded by path inside the sandbox (see
``entrypoint._register_helpers``); pandas, numpy and pyarrow are imported when a variable needs them.
"""

from __future__ import annotations

import json
import os
from typing import IO, Any

if __package__:
    from . import catalog as _catalog
    from . import confined
else:  # loaded by path inside the sandbox, after its siblings
    import _llm_agent_sandbox_catalog as _catalog  # type: ignore[no-redef]
    import _llm_agent_sandbox_confined as confined  # type: ignore[no-redef]

#: Limits on what one snapshot may become when loaded (``SandboxConfig.snapshot_max_rows`` and
#: ``snapshot_max_mb`` have the same defaults; the kernel and the magic pass the configured values).
DEFAULT_MAX_ROWS = 100_000_000
DEFAULT_MAX_BYTES = 1024 * 2**20
#: Python objects parsed from JSON take up to about this many times the text's size.
JSON_EXPANSION = 8


def load_entry(
    entry: dict[str, Any],
    folder: str | os.PathLike[str],
    *,
    max_rows: int = DEFAULT_MAX_ROWS,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> Any:
    """Read one (checked) catalog entry back into a Python object.

    Raises ``UnsafePath`` for a file that is not a regular file inside ``folder`` or that would take
    more than ``max_rows`` rows or ``max_bytes`` bytes, before anything large is read.
    """
    file, kind = entry["file"], entry["kind"]
    where = f"the snapshot {file!r} in {os.fspath(folder)}"
    if kind in ("dataframe", "series"):
        import pandas as pd

        with confined.open_confined(folder, file, max_bytes) as fh:
            _check_parquet(fh, where, max_rows, max_bytes)
            fh.seek(0)
            df = pd.read_parquet(fh)
        if kind == "dataframe":
            return df
        series = df.iloc[:, 0]
        series.name = entry.get("series_name")
        return series
    if kind == "ndarray":
        import numpy as np

        with confined.open_confined(folder, file, max_bytes + 2**16) as fh:  # + the header
            _check_npy(fh, where, max_bytes)
            fh.seek(0)
            return np.load(fh, allow_pickle=False)
    if kind == "json":
        try:
            value = json.loads(confined.read_confined(folder, file, max(1, max_bytes // JSON_EXPANSION)))
        except RecursionError:
            raise ValueError(f"{where} nests lists and objects too deeply to be read back") from None
        return tuple(value) if entry.get("python_type") == "tuple" and isinstance(value, list) else value
    if kind == "figure":
        return confined.read_confined(folder, file, max_bytes)
    raise ValueError(f"unknown snapshot kind {kind!r}")


def _check_parquet(fh: IO[bytes], where: str, max_rows: int, max_bytes: int) -> None:
    """Rows and in-memory size from the parquet footer: a few MB of file can claim billions of rows."""
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(fh)
    meta = parquet.metadata
    groups = [meta.row_group(i) for i in range(meta.num_row_groups)]
    rows = max(meta.num_rows, sum(g.num_rows for g in groups))
    if rows > max_rows:
        raise confined.UnsafePath(
            "load", where, f"it has {rows:,} rows, more than the {max_rows:,} allowed (SandboxConfig.snapshot_max_rows)"
        )
    fixed = 0  # bytes per row of the fixed-width columns, whatever their encoding on disk
    for field in parquet.schema_arrow:
        try:
            fixed += -(-field.type.bit_width // 8)
        except ValueError:  # strings, lists: their uncompressed size below counts them
            pass
    size = rows * fixed + sum(g.total_byte_size for g in groups)
    if size > max_bytes:
        raise confined.UnsafePath(
            "load",
            where,
            f"it expands to {size / 2**20:.1f} MB, more than the {max_bytes / 2**20:g} MB allowed "
            f"(SandboxConfig.snapshot_max_mb)",
        )


def _check_npy(fh: IO[bytes], where: str, max_bytes: int) -> None:
    import math

    from numpy.lib import format as npy

    version = npy.read_magic(fh)
    readers = {(1, 0): npy.read_array_header_1_0, (2, 0): npy.read_array_header_2_0}
    if version not in readers:
        raise confined.UnsafePath("load", where, f"it is a .npy file of version {version}, which is not read")
    shape, _, dtype = readers[version](fh)
    size = math.prod(shape) * dtype.itemsize
    if size > max_bytes:
        raise confined.UnsafePath(
            "load",
            where,
            f"it holds {size / 2**20:.1f} MB, more than the {max_bytes / 2**20:g} MB allowed (SandboxConfig.snapshot_max_mb)",
        )


def load(
    name: str, folder: str | os.PathLike[str], *, max_rows: int = DEFAULT_MAX_ROWS, max_bytes: int = DEFAULT_MAX_BYTES
) -> Any:
    """Read the snapshot of variable ``name`` from a snapshots folder (no kernel needed).

    Figures come back as PNG bytes. Raises ``KeyError`` naming the variables that exist, and
    ``UnsafePath`` for a snapshot file that was refused (see ``load_entry``).
    """
    catalog = _catalog.read_catalog(folder)
    entry = catalog["variables"].get(name)
    if entry is None:
        known = ", ".join(sorted(catalog["variables"])) or "none"
        refused = catalog["problems"].get(name) or catalog["problems"].get(_catalog.CATALOG)
        reason = catalog["not_persisted"].get(name, {}).get("reason")
        why = f" Its snapshot was refused: {refused}." if refused else f" It was not saved: {reason}." if reason else ""
        raise KeyError(f"No snapshot of {name!r} in {folder}.{why} Snapshots: {known}.")
    return load_entry(entry, folder, max_rows=max_rows, max_bytes=max_bytes)


def restore_into(
    ns: dict[str, Any],
    folder: str | os.PathLike[str],
    *,
    max_rows: int = DEFAULT_MAX_ROWS,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> dict[str, Any]:
    """Load every restorable snapshot into ``ns``; report what was restored and what was not (and why)."""
    catalog = _catalog.read_catalog(folder)
    restored, failed = [], dict(catalog["problems"])
    for name, entry in sorted(catalog["variables"].items()):
        if entry["kind"] == "figure":
            failed[name] = "figures are kept as PNG images only"
            continue
        try:
            ns[name] = load_entry(entry, folder, max_rows=max_rows, max_bytes=max_bytes)
            restored.append(name)
        except Exception as exc:  # noqa: BLE001  # the sandbox's file: reported, not raised
            failed[name] = str(getattr(exc, "reason", "") or f"{type(exc).__name__}: {exc}")[:300]
    for name, info in catalog["not_persisted"].items():
        failed.setdefault(name, info.get("reason", "not persisted"))
    return {"restored": restored, "failed": failed}
