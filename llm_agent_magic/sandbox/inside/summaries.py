"""Variable summaries: what the model needs to know about the namespace for its next attempt.

The ``summarize_*`` functions run inside the sandbox kernel (this file is loaded there
by path, so it imports only the standard library and looks at pandas/numpy only when
a variable already is one). ``VariableSummary`` and ``render_summaries`` are the
parent side: they turn the kernel's plain dicts into text for the model.
"""

from __future__ import annotations

import reprlib
import sys
import types
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

#: Names IPython puts in the user namespace that are not the user's variables.
IPYTHON_NAMES = frozenset({"In", "Out", "exit", "quit", "get_ipython"})
MAX_COLUMNS = 30
MAX_KEYS = 20
REPR_CHARS = 120

_SKIP_TYPES = (types.ModuleType, types.FunctionType, types.BuiltinFunctionType, types.MethodType, type)

_repr = reprlib.Repr()
_repr.maxstring = REPR_CHARS
_repr.maxother = REPR_CHARS
_repr.maxlist = _repr.maxtuple = _repr.maxset = _repr.maxdict = 8


def user_variables(ns: dict[str, Any], hidden: dict[str, Any] | None = None) -> dict[str, Any]:
    """The user's own variables: no modules, functions, classes, IPython history or private names."""
    hidden = hidden or {}
    out = {}
    for name, value in ns.items():
        if name.startswith("_") or name in IPYTHON_NAMES:
            continue
        if name in hidden and hidden[name] is value:
            continue  # put there by IPython at startup
        if isinstance(value, _SKIP_TYPES) or _is_typing_construct(value):
            continue
        out[name] = value
    return out


def _is_typing_construct(value: Any) -> bool:
    return type(value).__module__ == "typing"


def _type_name(obj: Any) -> str:
    cls = type(obj)
    module = cls.__module__
    if module == "builtins":
        return cls.__qualname__
    if module.split(".")[0] in ("pandas", "numpy"):
        return cls.__qualname__  # "DataFrame" and "ndarray" read better than their full paths
    return f"{module}.{cls.__qualname__}"


def summarize_value(name: str, obj: Any) -> dict[str, Any]:
    """A bounded, JSON-able description of one variable."""
    info: dict[str, Any] = {"name": name, "type": _type_name(obj)}
    try:
        _describe(obj, info)
    except Exception as exc:  # noqa: BLE001  # a broken __len__/__repr__ must not lose the whole summary
        info["repr"] = f"<could not describe: {type(exc).__name__}>"
    return info


def loaded_class(module: str, name: str) -> type[Any] | None:
    """``module.name`` if that module is imported *and* finished initialising, else None.

    The kernel may be importing pandas in a background thread (preload) while a summary runs; until
    the import finishes no object can be an instance of its classes.
    """
    cls = getattr(sys.modules.get(module), name, None)
    return cls if isinstance(cls, type) else None


def _describe(obj: Any, info: dict[str, Any]) -> None:
    if _describe_array(obj, info) or _describe_builtin(obj, info):
        return
    length = _safe_len(obj)
    if length is not None:
        info["length"] = length
        info["empty"] = length == 0
    shape = getattr(obj, "shape", None)
    if isinstance(shape, tuple):
        info["shape"] = [int(s) if isinstance(s, int) else str(s) for s in shape]
    info["repr"] = _short(_safe_repr(obj))


def _describe_array(obj: Any, info: dict[str, Any]) -> bool:
    """A DataFrame, Series or ndarray described into ``info``; False for anything else."""
    DataFrame, Series = loaded_class("pandas", "DataFrame"), loaded_class("pandas", "Series")
    ndarray = loaded_class("numpy", "ndarray")
    if DataFrame is not None and isinstance(obj, DataFrame):
        info["shape"] = list(obj.shape)
        info["empty"] = obj.shape[0] == 0
        cols = [[str(c), str(t)] for c, t in list(obj.dtypes.items())[:MAX_COLUMNS]]
        info["columns"] = cols
        info["more_columns"] = max(0, obj.shape[1] - MAX_COLUMNS)
        return True
    if Series is not None and isinstance(obj, Series):
        info["shape"] = list(obj.shape)
        info["empty"] = len(obj) == 0
        info["dtype"] = str(obj.dtype)
        if obj.name is not None:
            info["repr"] = f"name={obj.name!r}"
        return True
    if ndarray is not None and isinstance(obj, ndarray):
        info["shape"] = list(obj.shape)
        info["dtype"] = str(obj.dtype)
        info["empty"] = obj.size == 0
        if obj.size <= 10:
            info["repr"] = _short(repr(obj))
        return True
    return False


def _describe_builtin(obj: Any, info: dict[str, Any]) -> bool:
    """A string, container or number described into ``info``; False for anything else."""
    if isinstance(obj, (str, bytes, list, tuple, set, frozenset)):
        info["length"] = len(obj)
        info["empty"] = len(obj) == 0
        info["repr"] = _repr.repr(obj)
        return True
    if isinstance(obj, dict):
        info["length"] = len(obj)
        info["empty"] = len(obj) == 0
        keys = []
        for i, key in enumerate(obj):
            if i >= MAX_KEYS:
                break
            keys.append(_repr.repr(key))
        info["keys"] = keys
        return True
    if isinstance(obj, (int, float, complex, bool)) or obj is None:
        info["repr"] = _short(repr(obj))
        return True
    return False


def _safe_len(obj: Any) -> int | None:
    if not hasattr(type(obj), "__len__"):
        return None
    try:
        return int(len(obj))
    except Exception:  # noqa: BLE001  # a user's object's __len__ may raise anything
        return None


def _safe_repr(obj: Any) -> str:
    try:
        return repr(obj)
    except Exception as exc:  # noqa: BLE001  # a user's object's __repr__ may raise anything
        return f"<repr failed: {type(exc).__name__}>"


def _short(text: str, limit: int = REPR_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def summarize_namespace(variables: dict[str, Any], max_vars: int = 50) -> dict[str, Any]:
    """Summaries of up to ``max_vars`` variables (sorted by name) and how many were left out."""
    names = sorted(variables)
    return {
        "variables": [summarize_value(n, variables[n]) for n in names[:max_vars]],
        "omitted": max(0, len(names) - max_vars),
    }


# --- parent side --------------------------------------------------------------------------------


@dataclass
class VariableSummary:
    """One variable as the model sees it."""

    name: str
    type: str
    shape: list[Any] | None = None
    length: int | None = None
    empty: bool | None = None
    dtype: str | None = None
    columns: list[list[str]] = field(default_factory=list)
    more_columns: int = 0
    keys: list[str] = field(default_factory=list)
    repr: str = ""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VariableSummary:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v not in (None, [], 0, "") or k in ("name", "type")}

    def render(self) -> str:
        """One line, e.g. ``df: DataFrame shape=(3, 2); columns: a (int64), b (object)``."""
        head = f"{self.name}: {self.type}"
        parts = []
        if self.empty:
            if self.shape is not None and self.type in ("DataFrame", "Series"):
                head += " (EMPTY - 0 rows)"
            else:
                head += f" (EMPTY - length={self.length if self.length is not None else 0})"
        if self.shape is not None:
            parts.append(f"shape=({', '.join(str(s) for s in self.shape)}{',' if len(self.shape) == 1 else ''})")
        elif self.length is not None and not self.empty:
            parts.append(f"length={self.length}")
        if self.dtype:
            parts.append(f"dtype={self.dtype}")
        line = head + (" " + " ".join(parts) if parts else "")
        if self.columns:
            cols = ", ".join(f"{c} ({t})" for c, t in self.columns)
            if self.more_columns:
                cols += f", ... {self.more_columns} more"
            line += f"; columns: {cols}"
        if self.keys:
            more = (self.length or 0) - len(self.keys)
            line += "; keys: " + ", ".join(self.keys) + (f", ... {more} more" if more > 0 else "")
        if self.repr and not self.empty:
            line += f" = {self.repr}" if not self.keys else ""
        return line


def parse_summaries(data: dict[str, Any] | None) -> tuple[list[VariableSummary], int]:
    """The kernel's ``summarize_namespace`` output as dataclasses, plus the omitted count."""
    if not data:
        return [], 0
    return [VariableSummary.from_dict(v) for v in data.get("variables", [])], int(data.get("omitted", 0))


def render_summaries(summaries: Iterable[VariableSummary], omitted: int = 0, max_chars: int = 2000) -> str:
    """The namespace as text for the model, at most ``max_chars`` characters."""
    lines = [s.render() for s in summaries]
    if not lines:
        return "Variables: (none)"
    out = ["Variables:"]
    used = len(out[0])
    for i, line in enumerate(lines):
        if used + len(line) + 3 > max_chars:
            omitted += len(lines) - i
            break
        out.append("- " + line)
        used += len(line) + 3
    if omitted:
        out.append(f"- ... and {omitted} more variables")
    return "\n".join(out)
