"""The snapshot catalog (``catalog.json``): read with a size cap, checked entry by entry, written atomically.

The sandbox writes the catalog, so whoever reads it (the sandbox at a restore, the user's kernel at
``%agent pull``) treats it as hostile input: a catalog that is not a JSON object of the expected shape
is set aside as ``catalog.json.corrupt-<n>`` with a message; an entry whose name could break a kernel
(dunders, builtins, keywords, IPython's own names) or whose file is not its own ``<name><ext>`` in the
folder is left out with the reason, in ``catalog["problems"]``.

Standard library only: loaded by path inside the sandbox (see ``entrypoint._register_helpers``).
"""

from __future__ import annotations

import builtins
import json
import keyword
import os
from typing import Any

if __package__:
    from . import atomic, confined
else:  # loaded by path inside the sandbox, after its siblings (entrypoint._register_helpers)
    import _llm_agent_sandbox_atomic as atomic  # type: ignore[no-redef]
    import _llm_agent_sandbox_confined as confined  # type: ignore[no-redef]

CATALOG = "catalog.json"
CATALOG_VERSION = 1
#: Largest catalog read (tens of thousands of variables); a bigger one is set aside.
MAX_CATALOG_BYTES = 32 * 2**20
#: File name of each kind of snapshot: ``<name><ext>``.
EXTENSIONS = {"dataframe": ".parquet", "series": ".parquet", "ndarray": ".npy", "json": ".value.json", "figure": ".png"}
#: IPython's own names in a namespace (as ``summaries.IPYTHON_NAMES``).
IPYTHON_NAMES = frozenset({"In", "Out", "exit", "quit", "get_ipython"})
_BUILTINS = frozenset(dir(builtins))
_JSON_KINDS = {list: "a list", str: "a string", int: "a number", float: "a number", bool: "a boolean", type(None): "null"}
_OPTIONAL: dict[str, tuple[type, ...]] = {
    "fingerprint": (str,),
    "type": (str,),
    "time": (str,),
    "load": (str,),
    "dtype": (str,),
    "python_type": (str,),
    "bytes": (int,),
    "shape": (list,),
    "series_name": (str, int, float, type(None)),
}


def name_problem(name: object) -> str | None:
    """Why ``name`` may not be a snapshot's (restored into a kernel's namespace), or None."""
    if not isinstance(name, str) or not name.isidentifier():
        return "it is not a Python name"
    if keyword.iskeyword(name):
        return "it is a Python keyword"
    if name.startswith("_"):
        return "it starts with an underscore (the names of Python's and IPython's internals)"
    if name in IPYTHON_NAMES:
        return "it is one of IPython's own names"
    if name in _BUILTINS:
        return "it shadows a Python builtin"
    return None


def entry_problem(name: str, entry: object) -> str | None:
    """Why a catalog entry cannot be used, or None."""
    if not isinstance(entry, dict):
        return "it is not a catalog entry (an object with a name, kind and file)"
    problem = name_problem(name)
    if problem:
        return f"{name!r} is not a name a snapshot may have: {problem}"
    if entry.get("name", name) != name:
        return f"its entry names another variable ({entry.get('name')!r})"
    kind = entry.get("kind")
    if kind not in EXTENSIONS:
        return f"its kind {kind!r} is not one of {', '.join(EXTENSIONS)}"
    file, expected = entry.get("file"), name + EXTENSIONS[kind]
    if file != expected:
        if isinstance(file, str) and ("/" in file or "\\" in file or file in ("", ".", "..")):
            return f"its file {file!r} is not inside the snapshots folder"
        return f"its file {file!r} should be {expected!r}"
    for key, types in _OPTIONAL.items():
        value = entry.get(key)
        if key in entry and (not isinstance(value, types) or (isinstance(value, bool) and bool not in types)):
            return f"its {key!r} is not a {' or '.join(t.__name__ for t in types)}"
    shape = entry.get("shape")
    if shape is not None and not all(isinstance(n, int) and not isinstance(n, bool) for n in shape):
        return "its 'shape' is not a list of integers"
    return None


def empty_catalog() -> dict[str, Any]:
    return {"version": CATALOG_VERSION, "variables": {}, "not_persisted": {}, "problems": {}}


def read_catalog(folder: str | os.PathLike[str], *, set_aside: bool = True) -> dict[str, Any]:
    """The usable part of a snapshots folder's catalog (an empty one if there is none yet).

    ``problems`` maps what was left out (a variable's name, or ``catalog.json`` itself) to the reason.
    ``set_aside=False`` changes nothing on disk (a listing), leaving an unusable catalog where it is.
    """
    catalog = empty_catalog()
    try:
        data = json.loads(confined.read_confined(folder, CATALOG, MAX_CATALOG_BYTES).decode("utf-8"))
    except FileNotFoundError:
        return catalog
    except RecursionError:  # arrays nested deeper than the interpreter's stack: not a catalog
        catalog["problems"][CATALOG] = _set_aside(folder, "it nests too deeply to be a catalog")
        return catalog
    except (confined.UnsafePath, ValueError) as exc:  # a link, a FIFO, too large; not JSON or not UTF-8
        catalog["problems"][CATALOG] = _set_aside(folder, _short(exc)) if set_aside else _unusable(_short(exc))
        return catalog
    except OSError as exc:  # the file may be fine (permissions, I/O): report it, leave it where it is
        catalog["problems"][CATALOG] = f"the catalog could not be read ({_short(exc)})"
        return catalog
    variables = data.get("variables", {}) if isinstance(data, dict) else None
    not_persisted = data.get("not_persisted", {}) if isinstance(data, dict) else None
    if not isinstance(variables, dict) or not isinstance(not_persisted, dict):
        what = _JSON_KINDS.get(type(data), "a value") if not isinstance(data, dict) else "an object of the wrong shape"
        why = f"it is {what}, not a catalog"
        catalog["problems"][CATALOG] = _set_aside(folder, why) if set_aside else _unusable(why)
        return catalog
    for name, entry in variables.items():
        problem = entry_problem(name, entry)
        if problem:
            catalog["problems"][name] = problem
        else:
            catalog["variables"][name] = entry
    for name, info in not_persisted.items():
        if isinstance(name, str) and name.isidentifier() and isinstance(info, dict):
            catalog["not_persisted"][name] = {
                "type": str(info.get("type", ""))[:200],
                "reason": str(info.get("reason", "not persisted"))[:300],
            }
    return catalog


def write_catalog(folder: str | os.PathLike[str], catalog: dict[str, Any]) -> None:
    """Write the catalog atomically (``problems`` are the reader's findings, not part of it).

    Only the sandbox writes catalogs, into its own folder, so this one writes by absolute path (which
    the sandbox's audit hook can judge) through a temp file and a rename.
    """
    data = {
        "version": CATALOG_VERSION,
        "variables": catalog.get("variables", {}),
        "not_persisted": catalog.get("not_persisted", {}),
    }

    def dump(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=1, sort_keys=True)

    atomic.write_atomic(os.path.join(folder, CATALOG), dump)


def _set_aside(folder: str | os.PathLike[str], reason: str) -> str:
    """Rename an unusable catalog out of the way, so the session can start afresh; returns the message."""
    for n in range(1, 1000):
        aside = f"{CATALOG}.corrupt-{n}"
        try:
            if confined.exists_confined(folder, aside):
                continue
            confined.rename_confined(folder, CATALOG, aside)
        except OSError as exc:
            return f"the catalog could not be used ({reason}) nor set aside ({_short(exc)})"
        return f"the catalog could not be used ({reason}); it was set aside as {aside}, and nothing was restored from it"
    return f"the catalog could not be used ({reason}); too many corrupt catalogs to set another one aside"


def _unusable(reason: str) -> str:
    return f"the catalog could not be used ({reason}); nothing can be restored from it"


def _short(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None)
    return str(reason if reason else f"{type(exc).__name__}: {exc}")[:300]
