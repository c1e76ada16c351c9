"""What a front end can see of the user's notebook, sent with a run (``RunRequest.context``).

A front end fills it with what it sees: the magic from the notebook on disk (or the shell's history) and the
shell's namespace, the panel from the open notebook's model. The agents layer (``agents/context.py``) turns
it into prompt text. It crosses the wire from a stranger (a browser tab), so ``from_dict`` checks every type
and bounds every size: more cells, characters or columns than the bounds is an error that says what to send.
Variables are described, never their values: a name, a type, a shape, and a DataFrame's columns and dtypes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from .exceptions import BadContext

#: Bounds on what a run's context may hold (what a client may send; the prompt is fitted separately).
MAX_CELLS = 2000
MAX_CELL_CHARS = 200_000
MAX_VARIABLES = 1000
MAX_COLUMNS = 500
MAX_NAME_CHARS = 300
CELL_KINDS = ("code", "markdown", "raw")


@dataclass
class ContextCell:
    """One notebook cell: its source, its text outputs (as the front end trimmed them) and its error."""

    source: str
    kind: str = "code"
    outputs: str = ""
    #: The traceback (or ``ename: evalue``) of a cell that failed; "" for one that did not.
    error: str = ""


@dataclass
class ContextVariable:
    """A variable of the user's kernel, never its value: ``columns`` is ``[[name, dtype], ...]`` for a DataFrame."""

    name: str
    type: str
    shape: str = ""
    columns: list[list[str]] = field(default_factory=list)


@dataclass
class NotebookContext:
    """The cells in order, the active cell's index (-1: none), the selected text, the user's variables."""

    cells: list[ContextCell] = field(default_factory=list)
    active: int = -1
    selection: str = ""
    variables: list[ContextVariable] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: object) -> NotebookContext:
        """The context a wire dict describes (unknown keys ignored), or ``BadContext`` saying what is wrong."""
        if isinstance(data, NotebookContext):
            return data
        if not isinstance(data, Mapping):
            raise BadContext("context must be a JSON object with cells, active, selection and variables.")
        cells = _items(data.get("cells", []), "context.cells", MAX_CELLS)
        variables = _items(data.get("variables", []), "context.variables", MAX_VARIABLES)
        active = data.get("active", -1)
        if isinstance(active, bool) or not isinstance(active, int) or not -1 <= active < max(len(cells), 1):
            raise BadContext("context.active is the index of the active cell among context.cells, or -1 for none.")
        return cls(
            cells=[_cell(c, i) for i, c in enumerate(cells)],
            active=active,
            selection=_text(data.get("selection", ""), "context.selection", MAX_CELL_CHARS),
            variables=[_variable(v, i) for i, v in enumerate(variables)],
        )


def _items(value: object, what: str, bound: int) -> list[Any]:
    if not isinstance(value, list):
        raise BadContext(f"{what} must be a list.")
    if len(value) > bound:
        raise BadContext(f"{what} has {len(value):,} entries; send at most {bound:,}.")
    return value


def _text(value: object, what: str, bound: int) -> str:
    if not isinstance(value, str):
        raise BadContext(f"{what} must be a string, not {type(value).__name__}.")
    if len(value) > bound:
        raise BadContext(f"{what} is {len(value):,} characters long; send at most {bound:,} (trim it).")
    return value


def _cell(data: object, index: int) -> ContextCell:
    where = f"context.cells[{index}]"
    if not isinstance(data, Mapping):
        raise BadContext(f"{where} must be an object with source, kind, outputs and error.")
    kind = data.get("kind", "code")
    if kind not in CELL_KINDS:
        raise BadContext(f"{where}.kind must be one of {', '.join(CELL_KINDS)}.")
    return ContextCell(
        source=_text(data.get("source", ""), f"{where}.source", MAX_CELL_CHARS),
        kind=kind,
        outputs=_text(data.get("outputs", ""), f"{where}.outputs", MAX_CELL_CHARS),
        error=_text(data.get("error", ""), f"{where}.error", MAX_CELL_CHARS),
    )


def _variable(data: object, index: int) -> ContextVariable:
    where = f"context.variables[{index}]"
    if not isinstance(data, Mapping):
        raise BadContext(f"{where} must be an object with name, type, shape and columns.")
    columns = _items(data.get("columns", []), f"{where}.columns", MAX_COLUMNS)
    pairs = []
    for column in columns:
        if not (isinstance(column, list) and len(column) == 2 and all(isinstance(p, str) for p in column)):
            raise BadContext(f"{where}.columns holds [name, dtype] pairs of strings.")
        pairs.append([column[0][:MAX_NAME_CHARS], column[1][:MAX_NAME_CHARS]])
    return ContextVariable(
        name=_text(data.get("name", ""), f"{where}.name", MAX_NAME_CHARS),
        type=_text(data.get("type", ""), f"{where}.type", MAX_NAME_CHARS),
        shape=_text(data.get("shape", ""), f"{where}.shape", MAX_NAME_CHARS),
        columns=pairs,
    )
