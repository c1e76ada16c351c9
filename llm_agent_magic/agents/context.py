"""The notebook as the model sees it: cells, errors, the folder's files and the user's variables.

Front ends fill a ``NotebookContext`` with what they can see (``cells_from_notebook``, ``cells_from_history``
and ``describe_variables`` here serve the magic); ``gather`` adds the notebook folder's listing (names, sizes
and kinds, never contents: read without following links, at most ``MAX_FOLDER_ENTRIES``), fits all of it into
a share of the model's context window by cutting the biggest part first, and returns the prompt text with the
``ContextGathered`` event that tells the user what was sent. The text goes into the run's opening message, in
the stable prefix of the conversation, so every call of the run reuses the model's cache for it; the opening is
redacted when it joins the transcript, like every prompt.

Files of the listing are attached only when the model names one (``named_files``: in its code, or in what it
asks the file analyzer), through the same confined copy as attachments.
"""

from __future__ import annotations

import collections
import json
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .. import volatile
from ..events import ContextGathered
from ..exceptions import UnsafePath
from ..linear_regex import linear
from ..notebook_context import MAX_COLUMNS, MAX_VARIABLES, ContextCell, ContextVariable, NotebookContext
from ..redaction import redact
from ..sandbox.inside.confined import ConfinedFile, list_confined, read_confined
from ..text import CHARS_PER_TOKEN, clip

#: Files of the notebook's folder (and below) listed for the model.
MAX_FOLDER_ENTRIES = 2000
#: Characters kept of one cell's outputs, and of an error that is not the last one.
OUTPUT_CHARS = 1500
#: Share of the model's context window the notebook context may take.
BUDGET_SHARE = 0.35
#: The largest notebook file read from disk (the magic's notebook).
MAX_NOTEBOOK_BYTES = 50 * 2**20
#: Contexts kept registered as volatile at once (the runs in progress need theirs).
MAX_REGISTERED_CONTEXTS = 16
#: What a run's context becomes in a cassette's fingerprint.
CONTEXT_PLACEHOLDER = "<NOTEBOOK CONTEXT>"
#: Names of the shell's own that are not the user's variables.
SHELL_NAMES = frozenset({"In", "Out", "exit", "quit", "get_ipython", "open"})

#: Characters that continue a file name: a name inside a longer one is not that file.
_PATH_CHARS = frozenset("_./-")
_ANSI = linear(r"\x1b\[[0-9;]*[A-Za-z]")
_KINDS = {
    **dict.fromkeys((".csv", ".tsv", ".xlsx", ".xls", ".parquet", ".feather"), "table"),
    **dict.fromkeys((".json", ".jsonl", ".yaml", ".yml", ".toml", ".xml"), "data"),
    **dict.fromkeys((".txt", ".md", ".rst", ".pdf", ".docx", ".html"), "document"),
    **dict.fromkeys((".png", ".jpg", ".jpeg", ".gif", ".svg", ".webp"), "image"),
    **dict.fromkeys((".py", ".r", ".sql", ".sh"), "code"),
    ".ipynb": "notebook",
}


@dataclass
class GatheredContext:
    """The prompt text, the event that says what it holds, and the folder files the model may name."""

    text: str
    event: ContextGathered
    folder: str = ""
    files: list[str] = field(default_factory=list)


def file_kind(name: str) -> str:
    base = name.rsplit("/", 1)[-1]
    dot = base.rfind(".")
    return _KINDS.get(base[dot:].lower(), "file") if dot > 0 else "file"


def _size(n: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000  # type: ignore[assignment]
    return f"{n} B"


def folder_listing(folder: str, limit: int = MAX_FOLDER_ENTRIES) -> list[ConfinedFile]:
    """The regular files below ``folder`` (no links followed, hidden names left out), at most ``limit``."""
    if not folder or not os.path.isdir(folder):
        return []
    try:
        found = list_confined(folder, recursive=True, limit=limit)
    except (OSError, UnsafePath):
        return []
    return [f for f in found if not f.refused]


def gather(context: NotebookContext | None, folder: str, setting: str, num_ctx: int) -> GatheredContext | None:
    """The context of a run (``setting``: ``AgentConfig.context``), or None when there is nothing to show."""
    if setting == "none":
        return None
    context = context or NotebookContext()
    if setting == "selection":
        active = context.cells[context.active] if 0 <= context.active < len(context.cells) else None
        context = NotebookContext(cells=[active] if active else [], active=0 if active else -1, selection=context.selection)
        listing: list[ConfinedFile] = []
    else:
        listing = folder_listing(folder)
    if not context.cells and not context.selection and not context.variables and not listing:
        return None
    parts = {
        "cells": _cell_items(context),
        "files": [(f"- {f.relpath} ({_size(f.size)}, {file_kind(f.relpath)})", False) for f in listing],
        "variables": [(_variable_line(v), False) for v in context.variables],
        "selection": [(f"Selected text in the notebook:\n{context.selection}", True)] if context.selection else [],
    }
    counts = {name: len(items) for name, items in parts.items()}
    trimmed = _fit(parts, int(num_ctx * BUDGET_SHARE * CHARS_PER_TOKEN))
    text = redact(_render(parts, counts))
    _register_context(text)
    kept_files = [f.relpath for f in listing][: len(parts["files"])]
    kept_vars = [v.name for v in context.variables][: len(parts["variables"])]
    summary = (
        "Context: "
        + ", ".join(
            [
                _count(len(parts["cells"]), "cell"),
                _count(len(parts["files"]), "file"),
                _count(len(parts["variables"]), "variable"),
            ]
        )
        + (f" (trimmed to fit: {', '.join(trimmed)})" if trimmed else "")
    )
    event = ContextGathered(
        cells=len(parts["cells"]),
        files=len(parts["files"]),
        variables=len(parts["variables"]),
        summary=summary,
        file_names=[redact(n) for n in kept_files[:50]],
        variable_names=[redact(n) for n in kept_vars[:50]],
        trimmed=trimmed,
    )
    return GatheredContext(text, event, folder, [f.relpath for f in listing])


def _count(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _cell_items(context: NotebookContext) -> list[tuple[str, bool]]:
    """Each cell as text, and whether it must stay (the active cell, the last failing one)."""
    failing = max((i for i, c in enumerate(context.cells) if c.error), default=-1)
    items = []
    for i, cell in enumerate(context.cells):
        marks = [m for m, on in (("active", i == context.active), ("last error", i == failing)) if on]
        head = f"[{i + 1}] {cell.kind} cell" + (f" ({', '.join(marks)})" if marks else "")
        body = f"```python\n{cell.source.rstrip()}\n```" if cell.kind == "code" else cell.source.rstrip()
        lines = [head, body]
        if cell.outputs.strip():
            lines.append("Output:\n" + clip(cell.outputs.strip(), OUTPUT_CHARS))
        if cell.error.strip():
            error = cell.error.strip() if i == failing else clip(cell.error.strip(), OUTPUT_CHARS)
            lines.append("Error:\n" + error)
        items.append(("\n".join(lines), bool(marks)))
    return items


def _variable_line(v: ContextVariable) -> str:
    line = f"- {v.name}: {v.type}" + (f", shape {v.shape}" if v.shape else "")
    if v.columns:
        line += "; columns: " + ", ".join(f"{name} ({dtype})" for name, dtype in v.columns)
    return line


def _fit(parts: dict[str, list[tuple[str, bool]]], budget: int) -> list[str]:
    """Drop items of the biggest part until all fit in ``budget`` characters; returns the parts cut.

    Cells go oldest first (the active cell and the last failing one stay), files and variables last first.
    Each drop costs the same whatever the size of the parts (no recount): 2,000 files fit in about a millisecond.
    """
    sizes = {name: sum(len(text) + 1 for text, _ in items) for name, items in parts.items()}
    total = sum(sizes.values())
    # The next item to drop of each part is at the end of its list (pop() is cheap).
    victims = {name: [i for i, (_, keep) in enumerate(items) if not keep] for name, items in parts.items()}
    victims["cells"].reverse()
    dropped: dict[str, set[int]] = {name: set() for name in parts}
    trimmed: list[str] = []
    while total > budget:
        droppable = [n for n in parts if victims[n]]
        if not droppable:
            break
        name = max(droppable, key=lambda n: sizes[n])
        at = victims[name].pop()
        dropped[name].add(at)
        cost = len(parts[name][at][0]) + 1
        sizes[name] -= cost
        total -= cost
        if name not in trimmed:
            trimmed.append(name)
    for name, gone in dropped.items():
        if gone:
            parts[name] = [item for i, item in enumerate(parts[name]) if i not in gone]
    if total > budget:  # what must stay is itself too long: cut each kept text in the middle
        share = max(200, budget // max(1, sum(len(items) for items in parts.values())))
        for items in parts.values():
            items[:] = [(clip(text, share), keep) for text, keep in items]
        trimmed.append("kept cells")
    return trimmed


def _render(parts: dict[str, list[tuple[str, bool]]], counts: dict[str, int]) -> str:
    sections = []
    if parts["cells"]:
        left = counts["cells"] - len(parts["cells"])
        note = f" ({left} earlier cells left out)" if left else ""
        sections.append(f"The notebook the user is working in{note}:\n\n" + "\n\n".join(t for t, _ in parts["cells"]))
    if parts["selection"]:
        sections.append(parts["selection"][0][0])
    if parts["files"]:
        left = counts["files"] - len(parts["files"])
        note = f"; {left} more not listed" if left else ""
        listing = "\n".join(t for t, _ in parts["files"])
        sections.append(
            "Files in the notebook's folder (names and sizes only" + note + "). Open one by this path in code (it "
            "is copied into the sandbox's working folder when your code names it), or ask the file_analyzer:\n" + listing
        )
    if parts["variables"]:
        sections.append(
            "Variables in the user's own kernel (not in the sandbox; names, types and columns only):\n"
            + "\n".join(t for t, _ in parts["variables"])
        )
    return "\n\n".join(sections)


_contexts: collections.deque[str] = collections.deque()
_contexts_lock = threading.Lock()


def _register_context(text: str) -> None:
    """The context is what surrounds the question, like the clock: the folder changes under a recorded notebook
    (its cassette grows), and front ends see different histories (nbval runs cells without storing them). So a
    cassette's fingerprint holds a placeholder for it. Only the last few are remembered (a server runs for
    months)."""
    with _contexts_lock:
        volatile.register(text, CONTEXT_PLACEHOLDER)
        if text not in _contexts:
            _contexts.append(text)
        while len(_contexts) > MAX_REGISTERED_CONTEXTS:
            volatile.unregister(_contexts.popleft())


def named_files(text: str, listed: list[str], present: set[str]) -> list[str]:
    """The listed files ``text`` names (by path, or by file name when that is unique), not yet in ``present``."""
    by_name: dict[str, list[str]] = {}
    for rel in listed:
        by_name.setdefault(rel.rsplit("/", 1)[-1], []).append(rel)
    found = []
    for rel in listed:
        if rel in present:
            continue
        name = rel.rsplit("/", 1)[-1]
        if _names(text, rel) or (len(by_name[name]) == 1 and _names(text, name)):
            found.append(rel)
    return found


def mentioned_files(text: str, listed: list[str]) -> list[str]:
    """The listed files ``text`` mentions as ``@path`` (the panel's ``@file`` completion writes them so)."""
    if "@" not in text:
        return []
    return [rel for rel in listed if _names(text, "@" + rel)]


def _names(text: str, name: str) -> bool:
    """Does ``text`` hold ``name`` as a whole path (``'data.csv'``, not ``mydata.csv`` or ``data.csv.bak``)?"""
    at = text.find(name)
    while at >= 0:
        before = text[at - 1] if at else " "
        after = text[at + len(name)] if at + len(name) < len(text) else " "
        if not (before.isalnum() or before in _PATH_CHARS) and not (after.isalnum() or after in _PATH_CHARS):
            return True
        at = text.find(name, at + 1)
    return False


# --- what front ends see, made into a NotebookContext ------------------------------------------------------


def _text(value: Any) -> str:
    return "".join(value) if isinstance(value, list) else value if isinstance(value, str) else ""


def _outputs(outputs: Any) -> tuple[str, str]:
    """The text of a cell's outputs and its error (ANSI colours removed), each trimmed."""
    texts, error = [], ""
    for out in outputs if isinstance(outputs, list) else []:
        if not isinstance(out, Mapping):
            continue
        kind = out.get("output_type")
        if kind == "stream":
            texts.append(_text(out.get("text")))
        elif kind in ("execute_result", "display_data"):
            data = out.get("data")
            if isinstance(data, Mapping) and "text/plain" in data:
                texts.append(_text(data["text/plain"]))
        elif kind == "error":
            trace = out.get("traceback")
            lines = [str(t) for t in trace] if isinstance(trace, list) else []
            error = "\n".join(lines) or f"{out.get('ename', '')}: {out.get('evalue', '')}"
    return clip(_ANSI.sub("", "".join(texts)), OUTPUT_CHARS * 2), clip(_ANSI.sub("", error), 20_000)


def cells_from_notebook(notebook: Any) -> list[ContextCell]:
    """The cells of an nbformat notebook (as a JSON dict), with their text outputs and errors."""
    cells = notebook.get("cells") if isinstance(notebook, Mapping) else None
    found = []
    for cell in cells if isinstance(cells, list) else []:
        if not isinstance(cell, Mapping):
            continue
        kind = cell.get("cell_type") if cell.get("cell_type") in ("code", "markdown", "raw") else "raw"
        outputs, error = _outputs(cell.get("outputs"))
        found.append(ContextCell(source=_text(cell.get("source")), kind=str(kind), outputs=outputs, error=error))
    return found


def read_notebook(path: str) -> list[ContextCell]:
    """The cells of the notebook file at ``path`` (opened without following a link, size-bounded); [] when it
    cannot be read as a notebook."""
    folder, name = os.path.split(os.path.abspath(path))
    try:
        return cells_from_notebook(json.loads(read_confined(folder, name, MAX_NOTEBOOK_BYTES)))
    except (OSError, UnsafePath, ValueError):
        return []


def cells_from_history(inputs: list[str], outputs: Mapping[int, Any]) -> list[ContextCell]:
    """Cells from the shell's ``In`` and ``Out`` (``In[0]`` is empty; ``Out`` holds results by number)."""
    cells = []
    for number, source in enumerate(inputs):
        if number == 0 or not isinstance(source, str) or not source.strip():
            continue
        result = outputs.get(number)
        shown = "" if result is None else clip(_safe_repr(result), OUTPUT_CHARS)
        cells.append(ContextCell(source=source, outputs=shown))
    return cells


def _safe_repr(value: Any) -> str:
    try:
        return repr(value)
    except Exception:  # noqa: BLE001  # a user's object whose repr fails: say what it is
        return f"<{type(value).__name__}>"


def describe_variables(namespace: Mapping[str, Any], limit: int = MAX_VARIABLES) -> list[ContextVariable]:
    """The user's variables in ``namespace``: names, types, shapes and DataFrame columns, never values."""
    import types

    found: list[ContextVariable] = []
    for name, value in namespace.items():
        if (
            name.startswith("_")
            or name in SHELL_NAMES
            or isinstance(value, (types.ModuleType, types.FunctionType, types.BuiltinFunctionType, type))
        ):
            continue
        if len(found) >= limit:
            break
        kind = type(value)
        type_name = f"{kind.__module__}.{kind.__qualname__}" if kind.__module__ != "builtins" else kind.__name__
        try:
            shape, columns = _shape_and_columns(value)
        except Exception:  # noqa: BLE001  # a user's object that fails when looked at: its type is still worth telling
            shape, columns = "", []
        found.append(ContextVariable(name=name, type=type_name, shape=shape, columns=columns))
    return found


def _shape_and_columns(value: Any) -> tuple[str, list[list[str]]]:
    """A pandas or numpy object's shape (a DataFrame's columns and dtypes too), a container's length."""
    library = type(value).__module__.split(".")[0]
    if library in ("pandas", "numpy"):
        shape = getattr(value, "shape", None)
        dtypes = getattr(value, "dtypes", None) if type(value).__name__ == "DataFrame" else None
        columns = [[str(c), str(t)] for c, t in list(dtypes.items())[:MAX_COLUMNS]] if dtypes is not None else []
        return (str(tuple(shape)) if isinstance(shape, tuple) else ""), columns
    if isinstance(value, (list, dict, tuple, set, str, bytes)):
        return f"({len(value)},)", []
    return "", []
