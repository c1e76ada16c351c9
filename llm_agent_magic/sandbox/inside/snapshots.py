"""Variable snapshots: DataFrames and Series as parquet, arrays as .npy, plain values as JSON,
figures as PNG, and a catalog (``catalog.py``). Never pickle.

The writer runs inside the sandbox kernel (it has the objects); reading them back (``load``,
``restore_into``, in ``restore.py``, re-exported here) runs anywhere: the magic pulls a DataFrame into
the user's kernel with it. This file is loaded by path inside the sandbox's Python, so it imports only
the standard library at module level; pandas, numpy and pyarrow are imported when a variable needs them.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

if __package__:
    from . import atomic, confined
    from . import catalog as _catalog
    from . import restore as _restore
else:  # loaded by path inside the sandbox, after its siblings (entrypoint._register_helpers)
    import _llm_agent_sandbox_atomic as atomic  # type: ignore[no-redef]
    import _llm_agent_sandbox_catalog as _catalog  # type: ignore[no-redef]
    import _llm_agent_sandbox_confined as confined  # type: ignore[no-redef]
    import _llm_agent_sandbox_restore as _restore  # type: ignore[no-redef]

CATALOG = _catalog.CATALOG
CATALOG_VERSION = _catalog.CATALOG_VERSION
read_catalog = _catalog.read_catalog
write_catalog = _catalog.write_catalog
DEFAULT_MAX_ROWS = _restore.DEFAULT_MAX_ROWS
DEFAULT_MAX_BYTES = _restore.DEFAULT_MAX_BYTES
load = _restore.load
load_entry = _restore.load_entry
restore_into = _restore.restore_into
#: Plain values with more items than this are fingerprinted from a sample (mutations in
#: the unsampled middle can go unnoticed until the length or the ends change).
JSON_FULL_HASH_ITEMS = 10_000
#: Numeric data up to this size is checksummed whole; beyond it only a sample of rows is hashed.
FULL_CHECKSUM_BYTES = 256 * 2**20
SAMPLE_ROWS = 2000

_EXT = _catalog.EXTENSIONS
_LOADERS = {
    "dataframe": "pandas.read_parquet({file!r})",
    "series": "pandas.read_parquet({file!r}).iloc[:, 0]",
    "ndarray": "numpy.load({file!r}, allow_pickle=False)",
    "json": "json.load(open({file!r}))",
    "figure": "PNG image (view it; it is not loaded back as a figure)",
}


# Defined here, not in exceptions.py: this file runs inside the sandbox, where the package cannot be imported
# (see inside/__init__.py). Users never meet it: the writer turns it into a "not persisted" reason.
class Unsupported(Exception):
    """This value cannot be stored without pickle; the message says why."""


# --- classification and fingerprints ------------------------------------------------------------


def classify(obj: Any) -> str:
    """The snapshot kind of ``obj``, or raise ``Unsupported`` with the reason."""
    for module, name, kind in _CLASSES:
        cls = _loaded_class(module, name)
        if cls is not None and isinstance(obj, cls):
            if kind == "ndarray" and obj.dtype.hasobject:
                raise Unsupported("arrays of Python objects cannot be saved without pickle")
            return kind
    _check_json(obj, [0])
    return "json"


_SCALARS = (str, int, float, bool, type(None))
_CLASSES = (
    ("pandas", "DataFrame", "dataframe"),
    ("pandas", "Series", "series"),
    ("numpy", "ndarray", "ndarray"),
    ("matplotlib.figure", "Figure", "figure"),
)


def _loaded_class(module: str, name: str) -> type[Any] | None:
    # Only classes of fully imported modules: the kernel may still be importing pandas in the background.
    cls = getattr(sys.modules.get(module), name, None)
    return cls if isinstance(cls, type) else None


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


def _parquet_writer(df: Any) -> Any:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(df, preserve_index=None)
    # Dictionary encoding only pays off for repetitive columns; for floats it costs time and saves nothing.
    dict_cols = [f.name for f in table.schema if not pa.types.is_floating(f.type)]
    return lambda tmp: pq.write_table(table, tmp, compression="snappy", use_dictionary=dict_cols, write_statistics=False)


def write_parquet(df: Any, folder: str | os.PathLike[str], relpath: str) -> int:
    """Write a DataFrame to parquet at ``relpath`` inside ``folder``, atomically and never through a link
    (the folder may be one the sandbox can change); return the file size."""
    return confined.write_confined(folder, relpath, _parquet_writer(df))


def prepare_value(name: str, obj: Any, kind: str, folder: Path) -> tuple[dict[str, Any], str]:
    """Write one snapshot into a temp file; return its catalog entry (no fingerprint) and the temp path.

    Renaming the temp file to ``entry["file"]`` in ``folder`` publishes it.
    """
    path = folder / f"{name}{_EXT[kind]}"
    entry: dict[str, Any] = {"name": name, "kind": kind, "file": path.name, "type": _type_path(obj)}
    if kind == "dataframe":
        _check_column_names(obj.columns)
        tmp = atomic.temp_beside(path, _parquet_writer(obj))
        entry["shape"] = list(obj.shape)
    elif kind == "series":
        col = "__series__" if obj.name is None else str(obj.name)
        entry["series_name"] = obj.name if isinstance(obj.name, (str, int, float)) else None
        tmp = atomic.temp_beside(path, _parquet_writer(obj.to_frame(col)))
        entry["shape"] = list(obj.shape)
    elif kind == "ndarray":
        import numpy as np

        def save(target: str) -> None:
            with open(target, "wb") as fh:
                np.save(fh, obj, allow_pickle=False)

        tmp = atomic.temp_beside(path, save)
        entry["shape"] = list(obj.shape)
        entry["dtype"] = str(obj.dtype)
    elif kind == "json":
        text = json.dumps(obj)

        def dump(target: str) -> None:
            with open(target, "w", encoding="utf-8") as fh:
                fh.write(text)

        tmp = atomic.temp_beside(path, dump)
        entry["python_type"] = type(obj).__name__
        if isinstance(obj, (list, tuple, dict, str)):
            entry["shape"] = [len(obj)]
    else:  # figure
        tmp = atomic.temp_beside(path, lambda target: obj.savefig(target, format="png"))
    entry["bytes"] = os.path.getsize(tmp)
    entry["time"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    entry["load"] = _LOADERS[kind].format(file=path.name)
    return entry, tmp


def _check_column_names(columns: Any) -> None:
    if not all(isinstance(c, str) for c in columns):
        raise Unsupported("parquet needs string column names: rename the columns, e.g. df.columns = df.columns.astype(str)")


def _type_path(obj: Any) -> str:
    cls = type(obj)
    module = cls.__module__.split(".")[0] if cls.__module__.startswith(("pandas", "numpy")) else cls.__module__
    return cls.__qualname__ if module == "builtins" else f"{module}.{cls.__qualname__}"


def _frozen_copy(obj: Any, kind: str) -> Any:
    """A copy that later changes to ``obj`` cannot reach, made without copying data, or None if there is none.

    With pandas copy-on-write (always on from pandas 3) a shallow copy is enough: any later write to
    the original copies the data it touches first, so a background thread can serialise the copy.
    """
    if kind not in ("dataframe", "series"):
        return None
    pd: Any = sys.modules.get("pandas")  # loaded: checked on the next line
    if _loaded_class("pandas", "DataFrame") is None:
        return None
    try:
        cow = int(pd.__version__.split(".")[0]) >= 3 or pd.options.mode.copy_on_write is True
    except (ValueError, AttributeError):
        cow = False
    return obj.copy(deep=False) if cow else None


class SnapshotWriter:
    """Keeps a folder of snapshots in step with a namespace, rewriting only what changed.

    With ``background=True``, DataFrames and Series (under pandas copy-on-write) are serialised by one
    worker thread, so a cell's reply does not wait for parquet encoding; everything else is written
    before ``update`` returns. The catalog only ever lists completed files. ``flush`` waits for the worker.
    """

    def __init__(self, folder: str | os.PathLike[str], background: bool = False):
        self.folder = Path(folder)
        self.catalog = read_catalog(self.folder)
        self._fingerprints: dict[str, str] = {name: e.get("fingerprint", "") for name, e in self.catalog["variables"].items()}
        self._failed: dict[str, dict[str, str]] = {}
        self._generation: dict[str, int] = {}
        self._pending: dict[str, Future[bool]] = {}
        self._lock = threading.Lock()
        self._dirty = False
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="llm-agent-snapshots") if background else None

    def update(self, variables: dict[str, Any]) -> dict[str, Any]:
        """Snapshot changed variables, drop vanished ones; return what happened."""
        written, unchanged, background = [], [], []
        unsupported: dict[str, dict[str, str]] = {}
        self._pending = {n: f for n, f in self._pending.items() if not f.done()}
        with self._lock:
            known = set(self.catalog["variables"]) | set(self._pending)
        for name, obj in variables.items():
            problem = _catalog.name_problem(name)
            if problem:  # it would be refused at every restore
                unsupported[name] = {
                    "type": _type_path(obj),
                    "reason": f"the name {problem.removeprefix('it ')}, so it could not be restored",
                }
                self._forget(name)
                continue
            try:
                kind = classify(obj)
                fp = fingerprint(obj, kind)
            except Exception as exc:  # noqa: BLE001  # Unsupported, or a fingerprint that failed: never break an execution
                reason = str(exc) if isinstance(exc, Unsupported) else f"{type(exc).__name__}: {exc}"
                unsupported[name] = {"type": _type_path(obj), "reason": reason[:300]}
                self._forget(name)
                continue
            if self._fingerprints.get(name) == fp and (name in known or name in self._failed):
                unchanged.append(name)
                continue
            self._failed.pop(name, None)
            self._fingerprints[name] = fp
            generation = self._generation[name] = self._generation.get(name, 0) + 1
            frozen = _frozen_copy(obj, kind) if self._executor is not None else None
            if frozen is not None:
                assert self._executor is not None
                self._pending[name] = self._executor.submit(self._write, name, frozen, kind, fp, generation, True)
                background.append(name)
            elif self._write(name, obj, kind, fp, generation, False):
                written.append(name)
        removed = sorted(n for n in known if n not in variables)
        for name in removed:
            self._forget(name)
        with self._lock:
            not_persisted = {**{n: i for n, i in self._failed.items() if n in variables}, **unsupported}
            if self._dirty or not_persisted != self.catalog["not_persisted"]:
                self.catalog["not_persisted"] = not_persisted
                self._save_catalog()
        return {
            "written": written + background,
            "pending": background,
            "unchanged": unchanged,
            "removed": removed,
            "not_persisted": not_persisted,
        }

    def flush(self, timeout: float | None = None) -> bool:
        """Wait for background writes; True if none is left."""
        pending = [f for f in self._pending.values() if not f.done()]
        if pending:
            wait(pending, timeout=timeout)
        return all(f.done() for f in pending)

    def close(self, timeout: float | None = None) -> None:
        self.flush(timeout)
        if self._executor is not None:
            self._executor.shutdown(wait=False)

    def _write(self, name: str, obj: Any, kind: str, fp: str, generation: int, save_catalog: bool) -> bool:
        try:
            entry, tmp = prepare_value(name, obj, kind, self.folder)
        except Exception as exc:  # noqa: BLE001  # a user's object: whatever writing it raises, it is reported as not saved
            reason = str(exc) if isinstance(exc, Unsupported) else f"{type(exc).__name__}: {exc}"
            with self._lock:
                if self._generation.get(name) == generation:
                    self._failed[name] = {"type": _type_path(obj), "reason": reason[:300]}
                    self._drop_entry(name)  # the old snapshot no longer matches the variable
                    self.catalog["not_persisted"][name] = self._failed[name]
                    self._dirty = True
                    if save_catalog:
                        self._save_catalog()
            return False
        entry["fingerprint"] = fp
        with self._lock:
            if self._generation.get(name) != generation:  # deleted or changed again meanwhile
                atomic.discard(tmp)
                return False
            os.replace(tmp, self.folder / entry["file"])
            old = self.catalog["variables"].get(name)
            if old and old.get("file") != entry["file"]:
                atomic.discard(self.folder / old["file"])
            self.catalog["variables"][name] = entry
            self._dirty = True
            if save_catalog:
                self._save_catalog()
        return True

    def _forget(self, name: str) -> None:
        with self._lock:
            self._generation[name] = self._generation.get(name, 0) + 1  # a pending write of it is discarded
            self._fingerprints.pop(name, None)
            self._failed.pop(name, None)
            self._drop_entry(name)

    def _drop_entry(self, name: str) -> None:
        entry = self.catalog["variables"].pop(name, None)
        if entry:
            atomic.discard(self.folder / entry["file"])
            self._dirty = True

    def _save_catalog(self) -> None:  # with self._lock held
        self.catalog["version"] = CATALOG_VERSION
        write_catalog(self.folder, self.catalog)
        self._dirty = False
