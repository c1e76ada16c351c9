"""Variable snapshots: DataFrames and Series as parquet, arrays as .npy, plain values as JSON,
figures as PNG, and a catalog. Never pickle.

The writer runs inside the sandbox kernel (it has the objects); ``load`` and
``read_catalog`` run anywhere (the magic pulls a DataFrame into the user's kernel with
them). This file is loaded by path inside the sandbox's Python, so it imports only the
standard library at module level; pandas, numpy and pyarrow are imported when a
variable needs them.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

CATALOG = "catalog.json"
CATALOG_VERSION = 1
#: Plain values with more items than this are fingerprinted from a sample (mutations in
#: the unsampled middle can go unnoticed until the length or the ends change).
JSON_FULL_HASH_ITEMS = 10_000
#: Numeric data up to this size is checksummed whole; beyond it only a sample of rows is hashed.
FULL_CHECKSUM_BYTES = 256 * 2**20
SAMPLE_ROWS = 2000

_EXT = {"dataframe": ".parquet", "series": ".parquet", "ndarray": ".npy", "json": ".value.json", "figure": ".png"}
_LOADERS = {
    "dataframe": "pandas.read_parquet({file!r})",
    "series": "pandas.read_parquet({file!r}).iloc[:, 0]",
    "ndarray": "numpy.load({file!r}, allow_pickle=False)",
    "json": "json.load(open({file!r}))",
    "figure": "PNG image (view it; it is not loaded back as a figure)",
}


class Unsupported(Exception):
    """This value cannot be stored without pickle; the message says why."""


# --- classification and fingerprints ------------------------------------------------------------


def classify(obj: Any) -> str:
    """The snapshot kind of ``obj``, or raise ``Unsupported`` with the reason."""
    pd = sys.modules.get("pandas")
    np = sys.modules.get("numpy")
    if pd is not None and isinstance(obj, pd.DataFrame):
        return "dataframe"
    if pd is not None and isinstance(obj, pd.Series):
        return "series"
    if np is not None and isinstance(obj, np.ndarray):
        if obj.dtype.hasobject:
            raise Unsupported("arrays of Python objects cannot be saved without pickle")
        return "ndarray"
    mfig = sys.modules.get("matplotlib.figure")
    if mfig is not None and isinstance(obj, mfig.Figure):
        return "figure"
    _check_json(obj, [0])
    return "json"


_SCALARS = (str, int, float, bool, type(None))


def _check_json(obj: Any, count: list[int], depth: int = 0) -> None:
    if depth > 50:
        raise Unsupported("nested too deeply to store as JSON")
    if isinstance(obj, _SCALARS):
        if type(obj) not in _SCALARS:  # subclasses such as numpy.float64 or IntEnum would come back different
            raise Unsupported(f"{type(obj).__name__} is not a plain JSON value")
        return
    if type(obj) in (list, tuple):
        count[0] += len(obj)
        items = obj if len(obj) <= JSON_FULL_HASH_ITEMS else _ends(obj)
        for item in items:
            if depth and type(item) is tuple:
                raise Unsupported("tuples inside containers would come back as lists")
            _check_json(item, count, depth + 1)
        return
    if type(obj) is dict:
        count[0] += len(obj)
        for i, (key, value) in enumerate(obj.items()):
            if type(key) is not str:
                raise Unsupported("dict keys are not all strings (JSON would turn them into strings)")
            if i < JSON_FULL_HASH_ITEMS:
                _check_json(value, count, depth + 1)
        return
    raise Unsupported(f"{type(obj).__module__}.{type(obj).__qualname__} has no pickle-free format")


def _ends(seq: Any, n: int = 200) -> list[Any]:
    return list(seq[:n]) + list(seq[len(seq) // 2 : len(seq) // 2 + n]) + list(seq[-n:])


def fingerprint(obj: Any, kind: str) -> str:
    """A cheap digest that changes when the value changes (see the module constants for the limits)."""
    h = hashlib.blake2b(digest_size=16)
    h.update(kind.encode())
    if kind in ("dataframe", "series"):
        _fingerprint_pandas(obj, h)
    elif kind == "ndarray":
        h.update(f"{obj.shape}{obj.dtype}".encode())
        _checksum_array(obj, h)
    elif kind == "json":
        if _size(obj) <= JSON_FULL_HASH_ITEMS:
            h.update(json.dumps(obj, sort_keys=True).encode())
        else:
            h.update(f"{type(obj).__name__}{len(obj)}".encode())
            sample = _ends(list(obj.items()) if isinstance(obj, dict) else obj)
            h.update(json.dumps(sample, sort_keys=True, default=repr).encode())
    elif kind == "figure":
        # Re-rendering a figure to compare it costs more than the snapshot: a figure object is written once.
        h.update(f"{id(obj)}:{len(obj.axes)}".encode())
    return h.hexdigest()


def _size(obj: Any) -> int:
    return len(obj) if isinstance(obj, (list, tuple, dict, str)) else 1


def _fingerprint_pandas(obj: Any, h: Any) -> None:
    import numpy as np
    from pandas.util import hash_pandas_object

    h.update(repr(obj.shape).encode())
    if obj.ndim == 2:
        h.update(repr([(str(c), str(t)) for c, t in obj.dtypes.items()]).encode())
        columns = [obj.iloc[:, i] for i in range(obj.shape[1])]
    else:
        h.update(f"{obj.name!r}{obj.dtype}".encode())
        columns = [obj]
    budget = FULL_CHECKSUM_BYTES
    for col in columns:
        values = col.array
        arr = getattr(values, "_ndarray", None)
        if arr is None and col.dtype.kind in "biufcmM":
            arr = col.to_numpy(copy=False)
        if isinstance(arr, np.ndarray) and arr.dtype.kind in "biufcmM" and arr.nbytes <= budget:
            budget -= arr.nbytes
            _checksum_array(arr, h)
    n = len(obj)
    sample = obj if n <= SAMPLE_ROWS else obj.iloc[np.linspace(0, n - 1, SAMPLE_ROWS).astype(np.int64)]
    try:
        h.update(hash_pandas_object(sample, index=True).to_numpy().tobytes())
    except TypeError:  # unhashable cells (lists, dicts): fall back to their text
        h.update(sample.to_string().encode())


def _checksum_array(arr: Any, h: Any) -> None:
    import numpy as np

    if arr.size == 0:
        return
    if arr.dtype.kind in "biufcmM" and arr.nbytes <= FULL_CHECKSUM_BYTES and arr.dtype.itemsize in (1, 2, 4, 8):
        # Summing the raw bits sees every element at memory speed (a few ms for 80 MB).
        flat = np.ascontiguousarray(arr).reshape(-1).view(f"u{arr.dtype.itemsize}")
        h.update(int(np.add.reduce(flat, dtype=np.uint64)).to_bytes(8, "little"))
        weights = flat[:: max(1, flat.size // 4096)]
        h.update(weights.tobytes())
        return
    flat = arr.reshape(-1) if arr.flags.c_contiguous else arr.ravel()
    step = max(1, flat.size // 4096)
    h.update(np.ascontiguousarray(flat[::step]).tobytes())


# --- writing --------------------------------------------------------------------------------------


def _atomic(path: Path, write: Any) -> int:
    """Write through ``write(tmp_path)`` into a temp file beside ``path``, then rename it into place."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return path.stat().st_size


def write_parquet(df: Any, path: str | os.PathLike[str]) -> int:
    """Write a DataFrame to parquet atomically; return the file size."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(df, preserve_index=None)
    # Dictionary encoding only pays off for repetitive columns; for floats it costs time and saves nothing.
    dict_cols = [f.name for f in table.schema if not pa.types.is_floating(f.type)]
    return _atomic(
        Path(path),
        lambda tmp: pq.write_table(table, tmp, compression="snappy", use_dictionary=dict_cols, write_statistics=False),
    )


def write_value(name: str, obj: Any, kind: str, folder: Path) -> dict[str, Any]:
    """Write one snapshot file and return its catalog entry (without the fingerprint)."""
    path = folder / f"{name}{_EXT[kind]}"
    entry: dict[str, Any] = {"name": name, "kind": kind, "file": path.name, "type": _type_path(obj)}
    if kind == "dataframe":
        _check_column_names(obj.columns)
        entry["bytes"] = write_parquet(obj, path)
        entry["shape"] = list(obj.shape)
    elif kind == "series":
        col = "__series__" if obj.name is None else str(obj.name)
        entry["series_name"] = obj.name if isinstance(obj.name, (str, int, float)) else None
        entry["bytes"] = write_parquet(obj.to_frame(col), path)
        entry["shape"] = list(obj.shape)
    elif kind == "ndarray":
        import numpy as np

        def save(tmp: str) -> None:
            with open(tmp, "wb") as fh:
                np.save(fh, obj, allow_pickle=False)

        entry["bytes"] = _atomic(path, save)
        entry["shape"] = list(obj.shape)
        entry["dtype"] = str(obj.dtype)
    elif kind == "json":
        text = json.dumps(obj)

        def dump(tmp: str) -> None:
            with open(tmp, "w", encoding="utf-8") as fh:
                fh.write(text)

        entry["bytes"] = _atomic(path, dump)
        entry["python_type"] = type(obj).__name__
        if isinstance(obj, (list, tuple, dict, str)):
            entry["shape"] = [len(obj)]
    elif kind == "figure":
        entry["bytes"] = _atomic(path, lambda tmp: obj.savefig(tmp, format="png"))
    entry["time"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    entry["load"] = _LOADERS[kind].format(file=path.name)
    return entry


def _check_column_names(columns: Any) -> None:
    if not all(isinstance(c, str) for c in columns):
        raise Unsupported("parquet needs string column names: rename the columns, e.g. df.columns = df.columns.astype(str)")


def _type_path(obj: Any) -> str:
    cls = type(obj)
    module = cls.__module__.split(".")[0] if cls.__module__.startswith(("pandas", "numpy")) else cls.__module__
    return cls.__qualname__ if module == "builtins" else f"{module}.{cls.__qualname__}"


def read_catalog(folder: str | os.PathLike[str]) -> dict[str, Any]:
    """The catalog of a snapshots folder (an empty one if there is none yet)."""
    path = Path(folder) / CATALOG
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {"version": CATALOG_VERSION, "variables": {}, "not_persisted": {}}
    data.setdefault("variables", {})
    data.setdefault("not_persisted", {})
    return data


def write_catalog(folder: Path, catalog: dict[str, Any]) -> None:
    text = json.dumps(catalog, indent=1, sort_keys=True)

    def dump(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)

    _atomic(folder / CATALOG, dump)


class SnapshotWriter:
    """Keeps a folder of snapshots in step with a namespace, rewriting only what changed."""

    def __init__(self, folder: str | os.PathLike[str]):
        self.folder = Path(folder)
        self.catalog = read_catalog(self.folder)
        # Identity fast path: an object we fingerprinted and whose fingerprint inputs were unchanged.
        self._fingerprints: dict[str, str] = {
            name: e.get("fingerprint", "") for name, e in self.catalog["variables"].items()
        }

    def update(self, variables: dict[str, Any]) -> dict[str, Any]:
        """Snapshot changed variables, drop vanished ones; return what happened."""
        written, unchanged, failed = [], [], {}
        not_persisted: dict[str, dict[str, str]] = {}
        entries = self.catalog["variables"]
        for name, obj in variables.items():
            try:
                kind = classify(obj)
                fp = fingerprint(obj, kind)
            except Unsupported as exc:
                not_persisted[name] = {"type": _type_path(obj), "reason": str(exc)}
                self._drop(name)
                continue
            except Exception as exc:  # fingerprinting must never break an execution
                not_persisted[name] = {"type": _type_path(obj), "reason": f"{type(exc).__name__}: {exc}"[:300]}
                self._drop(name)
                continue
            if self._fingerprints.get(name) == fp and name in entries:
                unchanged.append(name)
                continue
            try:
                entry = write_value(name, obj, kind, self.folder)
            except Exception as exc:
                reason = str(exc) if isinstance(exc, Unsupported) else f"{type(exc).__name__}: {exc}"
                not_persisted[name] = {"type": _type_path(obj), "reason": reason[:300]}
                failed[name] = reason[:300]
                self._drop(name)
                continue
            old = entries.get(name)
            if old and old.get("file") != entry["file"]:
                _unlink(self.folder / old["file"])
            entry["fingerprint"] = fp
            entries[name] = entry
            self._fingerprints[name] = fp
            written.append(name)
        removed = [name for name in list(entries) if name not in variables]
        for name in removed:
            self._drop(name)
        changed = written or removed or not_persisted != self.catalog.get("not_persisted")
        self.catalog["not_persisted"] = not_persisted
        if changed:
            self.catalog["version"] = CATALOG_VERSION
            write_catalog(self.folder, self.catalog)
        return {"written": written, "unchanged": unchanged, "removed": removed, "not_persisted": not_persisted}

    def _drop(self, name: str) -> None:
        entry = self.catalog["variables"].pop(name, None)
        self._fingerprints.pop(name, None)
        if entry:
            _unlink(self.folder / entry["file"])


def _unlink(path: Path) -> None:
    try:
        path.unlink()
    except OSError:
        pass


# --- reading --------------------------------------------------------------------------------------


def load_entry(entry: dict[str, Any], folder: str | os.PathLike[str]) -> Any:
    """Read one catalog entry back into a Python object."""
    path = Path(folder) / entry["file"]
    kind = entry["kind"]
    if kind in ("dataframe", "series"):
        import pandas as pd

        df = pd.read_parquet(path)
        if kind == "dataframe":
            return df
        series = df.iloc[:, 0]
        series.name = entry.get("series_name")
        return series
    if kind == "ndarray":
        import numpy as np

        return np.load(path, allow_pickle=False)
    if kind == "json":
        value = json.loads(path.read_text(encoding="utf-8"))
        return tuple(value) if entry.get("python_type") == "tuple" else value
    if kind == "figure":
        return path.read_bytes()
    raise ValueError(f"unknown snapshot kind {kind!r}")


def load(name: str, folder: str | os.PathLike[str]) -> Any:
    """Read the snapshot of variable ``name`` from a snapshots folder (no kernel needed).

    Figures come back as PNG bytes. Raises ``KeyError`` naming the variables that exist.
    """
    catalog = read_catalog(folder)
    entry = catalog["variables"].get(name)
    if entry is None:
        known = ", ".join(sorted(catalog["variables"])) or "none"
        reason = catalog["not_persisted"].get(name, {}).get("reason")
        why = f" It was not saved: {reason}." if reason else ""
        raise KeyError(f"No snapshot of {name!r} in {folder}.{why} Snapshots: {known}.")
    return load_entry(entry, folder)


def restore_into(ns: dict[str, Any], folder: str | os.PathLike[str]) -> dict[str, Any]:
    """Load every restorable snapshot into ``ns``; report what was restored and what was not."""
    catalog = read_catalog(folder)
    restored, failed = [], {}
    for name, entry in sorted(catalog["variables"].items()):
        if entry["kind"] == "figure":
            failed[name] = "figures are kept as PNG images only"
            continue
        try:
            ns[name] = load_entry(entry, folder)
            restored.append(name)
        except Exception as exc:
            failed[name] = f"{type(exc).__name__}: {exc}"[:300]
    for name, info in catalog["not_persisted"].items():
        failed.setdefault(name, info.get("reason", "not persisted"))
    return {"restored": restored, "failed": failed}
