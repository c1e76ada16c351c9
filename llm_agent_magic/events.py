"""The typed events ``AgentSession.run()`` yields: the only thing that crosses to a front end.

Each event is a plain dataclass. ``to_dict()`` gives the wire format (WebSocket messages,
cassettes, notebook metadata): JSON-serialisable, with a stable snake_case ``type``.
``event_from_dict()`` rebuilds the right class from such a dict.

Readers ignore keys they do not know, so a newer writer can add fields without
breaking an older reader (an old notebook, a cached cassette, a stale browser tab).
"""

from __future__ import annotations

import dataclasses
import inspect
import time
import types
import typing
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

__all__ = [
    "EVENT_TYPES",
    "Answer",
    "ApprovalRequested",
    "CellOutput",
    "Classified",
    "ContextGathered",
    "CodeCell",
    "Error",
    "Event",
    "FixProposed",
    "Observation",
    "PlanCreated",
    "RunFinished",
    "RunStarted",
    "StepFinished",
    "StepStarted",
    "Thought",
    "Token",
    "ToolCall",
    "Usage",
    "Waiting",
    "event_from_dict",
    "events_from_store",
    "json_schema",
]

CELL_STATUSES = ("ok", "error", "timeout", "died", "skipped")
#: How a cell that waited for approval went ahead: as generated, or as the user edited it.
APPROVALS = ("", "approved", "edited")
RUN_STATUSES = ("ok", "error", "cancelled")


def _new_cell_id() -> str:
    return uuid.uuid4().hex[:12]


@dataclass
class WireMessage:
    """What goes over the wire, either way (events here, requests in ``run_requests``): a ``type`` and fields."""

    type: ClassVar[str] = ""

    def to_dict(self) -> dict[str, Any]:
        """The wire format: ``{"type": ..., <fields>}``."""
        return {"type": self.type, **dataclasses.asdict(self)}


@dataclass
class Event(WireMessage):
    """Base of every event, ``{"type", "run_id", "ts", "seq", <fields>}`` on the wire. ``run_id``, ``ts`` and ``seq``
    are keyword-only so subclasses keep positional fields."""

    run_id: str = field(default="", kw_only=True)
    ts: float = field(default_factory=time.time, kw_only=True)
    #: The event's number in its run (1, 2, ..., tokens included), given as the run emits it and stored with it, so
    #: "the events of run R after N" mean the same live and from the store; 0 for an event not emitted by a run.
    seq: int = field(default=0, kw_only=True, compare=False)


@dataclass
class RunStarted(Event):
    """The agent accepted a request; ``mode_requested`` is "auto" unless the user forced a mode."""

    type: ClassVar[str] = "run_started"
    request: str
    mode_requested: str = "auto"
    session_id: str = ""
    #: What makes two requests the same (``agents/answers.request_key``); empty for requests never reused.
    request_key: str = ""


@dataclass
class Waiting(Event):
    """The run waits for its session: ``holder`` (e.g. "a run started from the side panel (pid 123, since
    18:02:05)") is using the session's sandbox. ``front_end``, ``pid`` and ``since`` are the holder's, when known;
    the run gives up after ``timeout`` seconds. Sent again if the holder changes."""

    type: ClassVar[str] = "waiting"
    holder: str
    front_end: str = ""
    pid: int | None = None
    since: float | None = None
    timeout: float = 0.0


@dataclass
class ContextGathered(Event):
    """What the model was shown of the notebook (``AgentConfig.context``): counts, and the names of the files and
    variables, so the user sees what was sent. ``summary`` is the line front ends show ("Context: ...")."""

    type: ClassVar[str] = "context_gathered"
    cells: int = 0
    files: int = 0
    variables: int = 0
    summary: str = ""
    file_names: list[str] = field(default_factory=list)
    variable_names: list[str] = field(default_factory=list)
    #: Parts cut to fit the model's context window, biggest first ("outputs", "cells", ...).
    trimmed: list[str] = field(default_factory=list)


@dataclass
class Classified(Event):
    """The request was routed to ``mode``; ``fallback`` when the classifier failed and a default was used."""

    type: ClassVar[str] = "classified"
    mode: str
    reason: str = ""
    fallback: bool = False


@dataclass
class PlanCreated(Event):
    """A plan: ``steps`` are dicts with goal/tool/success_criteria; ``note`` says how it was parsed, if unusually."""

    type: ClassVar[str] = "plan_created"
    steps: list[dict[str, Any]]
    note: str = ""


@dataclass
class StepStarted(Event):
    """Plan step ``index`` (0-based) began."""

    type: ClassVar[str] = "step_started"
    index: int
    goal: str = ""


@dataclass
class StepFinished(Event):
    """Plan step ``index`` ended with ``status`` ("ok", "error", "skipped")."""

    type: ClassVar[str] = "step_finished"
    index: int
    status: str
    summary: str = ""


@dataclass
class Thought(Event):
    """The model's reasoning before an action (ReAct)."""

    type: ClassVar[str] = "thought"
    text: str


@dataclass
class ToolCall(Event):
    """A tool is about to run with ``input``."""

    type: ClassVar[str] = "tool_call"
    tool: str
    input: str


@dataclass
class CodeCell(Event):
    """Generated code about to run: attempt 1 is the first try, later ones are fixes; ``step`` is the plan step.

    With approval on, a cell the user edited is sent again with the same ``cell_id``: ``source`` is then the
    code that runs, ``original_source`` what the model wrote and ``approval`` is "edited" (a later event of a
    cell id replaces the earlier one). ``approval`` is "approved" for a cell the user let run as it was and
    "" when nobody was asked.
    """

    type: ClassVar[str] = "code_cell"
    source: str
    attempt: int = 1
    step: int | None = None
    cell_id: str = field(default_factory=_new_cell_id)
    approval: str = ""
    original_source: str = ""

    def __post_init__(self) -> None:
        if self.approval not in APPROVALS:
            raise ValueError(f"CodeCell.approval must be one of {APPROVALS}, not {self.approval!r}")


@dataclass
class ApprovalRequested(Event):
    """The cell ``cell_id`` (its ``CodeCell`` came just before) waits for the user before it runs.

    A front end shows ``code`` and answers with ``ApprovalReply(run_id, cell_id, action=run|edit|skip, source)``.
    ``attempt`` 1 is the coder's first try, later ones are fixes (``reason`` then says what failed); ``task``
    is what the code is meant to do; ``actions`` the replies accepted; ``timeout`` the seconds the run waits
    before it stops with an ``ApprovalTimeout`` error (0: it waits until stopped).
    """

    type: ClassVar[str] = "approval_requested"
    cell_id: str
    code: str
    attempt: int = 1
    step: int | None = None
    task: str = ""
    reason: str = ""
    tool: str = "python_coder"
    actions: list[str] = field(default_factory=lambda: ["run", "edit", "skip"])
    timeout: float = 0.0


@dataclass
class CellOutput(Event):
    """What ``cell_id`` produced: nbformat ``outputs``; ``final`` on the last attempt; ``failed`` if it did not work.

    ``status`` "skipped": the user skipped the cell, it never ran (no outputs; neither final nor failed).
    """

    type: ClassVar[str] = "cell_output"
    cell_id: str
    outputs: list[dict[str, Any]]
    status: str = "ok"
    duration: float = 0.0
    final: bool = False
    failed: bool = False

    def __post_init__(self) -> None:
        if self.status not in CELL_STATUSES:
            raise ValueError(f"CellOutput.status must be one of {CELL_STATUSES}, not {self.status!r}")


@dataclass
class Observation(Event):
    """A tool's result as fed back to the model."""

    type: ClassVar[str] = "observation"
    text: str
    tool: str = ""


@dataclass
class Token(Event):
    """A chunk of the streamed final answer."""

    type: ClassVar[str] = "token"
    text: str


@dataclass
class Answer(Event):
    """The complete final answer (the concatenated tokens, cleaned)."""

    type: ClassVar[str] = "answer"
    markdown: str


@dataclass
class FixProposed(Event):
    """The corrected cell a fix run's answer holds (``RunRequest.fix_of``): the cell as it was, the proposed
    replacement ("" when the answer holds no python block) and the unified diff between them. Nothing is applied:
    the front end shows the diff and replaces the cell only when the user accepts."""

    type: ClassVar[str] = "fix_proposed"
    source: str
    fixed: str = ""
    diff: str = ""


@dataclass
class Usage(Event):
    """Token counts and wall time of one model call (``purpose`` as in the model protocol)."""

    type: ClassVar[str] = "usage"
    prompt_tokens: int
    completion_tokens: int
    duration: float = 0.0
    purpose: str = ""
    model: str = ""


@dataclass
class Error(Event):
    """Something went wrong; ``recoverable`` if the run goes on."""

    type: ClassVar[str] = "error"
    kind: str
    message: str
    recoverable: bool = False


@dataclass
class RunFinished(Event):
    """The run ended with ``status`` ("ok", "error", "cancelled"); always the last event of a run."""

    type: ClassVar[str] = "run_finished"
    status: str
    duration: float = 0.0

    def __post_init__(self) -> None:
        if self.status not in RUN_STATUSES:
            raise ValueError(f"RunFinished.status must be one of {RUN_STATUSES}, not {self.status!r}")


#: Wire ``type`` -> event class.
EVENT_TYPES: dict[str, type[Event]] = {
    cls.type: cls
    for cls in (
        RunStarted,
        Waiting,
        ContextGathered,
        Classified,
        PlanCreated,
        StepStarted,
        StepFinished,
        Thought,
        ToolCall,
        CodeCell,
        ApprovalRequested,
        CellOutput,
        Observation,
        Token,
        Answer,
        FixProposed,
        Usage,
        Error,
        RunFinished,
    )
}


#: Records a run's stored events hold besides its events: ``answer_part`` (the streamed answer so far, for a front
#: end of another process to show while the run streams; the ``answer`` event supersedes the parts).
PROGRESS_RECORDS = frozenset({"answer_part"})


def events_from_store(items: Iterable[Mapping[str, Any]]) -> list[Event]:
    """A run's events rebuilt from what the store holds, without the progress records (``PROGRESS_RECORDS``)."""
    return [event_from_dict(item) for item in items if item.get("type") not in PROGRESS_RECORDS]


def event_from_dict(data: Mapping[str, Any]) -> Event:
    """Rebuild an event from its ``to_dict()`` form. Unknown keys are ignored; an unknown type is a ValueError."""
    kind = data.get("type")
    cls = EVENT_TYPES.get(kind)  # type: ignore[arg-type]
    if cls is None:
        raise ValueError(f"Unknown event type {kind!r}; known types: {', '.join(sorted(EVENT_TYPES))}")
    names = {f.name for f in dataclasses.fields(cls)}
    kwargs = {key: value for key, value in data.items() if key in names}
    try:
        return cls(**kwargs)
    except TypeError as exc:  # a required field is missing
        raise ValueError(f"Malformed {kind!r} event {dict(data)!r}: {exc}") from None


# --- the events as a JSON schema (the labextension's TypeScript types are generated from it) -----------------

#: Fields whose values are one of a few strings (checked in ``__post_init__``), written as enums in the schema.
_CHOICES: dict[tuple[str, str], tuple[str, ...]] = {
    ("cell_output", "status"): CELL_STATUSES,
    ("code_cell", "approval"): APPROVALS,
    ("run_finished", "status"): RUN_STATUSES,
}
_JSON_TYPES = {str: "string", int: "integer", float: "number", bool: "boolean"}


def _type_schema(hint: Any) -> dict[str, Any]:
    """The JSON schema of one field's type hint (the few kinds events use)."""
    if hint is Any:
        return {}
    if hint in _JSON_TYPES:
        return {"type": _JSON_TYPES[hint]}
    args = typing.get_args(hint)
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return {"anyOf": [_type_schema(arg) for arg in args]}
    if hint is type(None):
        return {"type": "null"}
    if origin is list:
        return {"type": "array", "items": _type_schema(args[0])}
    if origin is dict:
        return {"type": "object", "additionalProperties": _type_schema(args[1]) or True}
    raise TypeError(f"an event field of type {hint!r} has no JSON schema here; add it to _type_schema")


def _event_schema(cls: type[Event]) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    properties: dict[str, Any] = {"type": {"type": "string", "const": cls.type}}
    for f in dataclasses.fields(cls):
        schema = _type_schema(hints[f.name])
        if (cls.type, f.name) in _CHOICES:
            schema = {"type": "string", "enum": list(_CHOICES[(cls.type, f.name)])}
        if f.name == "seq":
            schema = {
                **schema,
                "description": "The event's number in its run (1, 2, ..., tokens included), the same "
                "live and from the store; 0 for an event no run emitted.",
            }
        properties[f.name] = schema
    required = list(properties)  # to_dict() writes every field
    # Titles name the TypeScript interfaces: I...Event, as the labextension names its interfaces (and not "Error").
    return {
        "type": "object",
        "title": f"I{cls.__name__}Event",
        "description": inspect.cleandoc(cls.__doc__ or ""),
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }


def json_schema() -> dict[str, Any]:
    """Every event's wire format (``to_dict()``, ``seq`` included) as one JSON schema: ``AgentEvent`` is
    one of them, told apart by ``type``. The labextension turns it into TypeScript types when it is built; the
    committed copy is ``labextension/schema-gen/events.schema.json`` (``make events-schema``; a test checks it)."""
    return {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": "AgentEvent",
        "description": "One event of a run, as llm_agent_magic/events.py defines it (generated: do not edit).",
        "oneOf": [{"$ref": f"#/definitions/{cls.type}"} for cls in EVENT_TYPES.values()],
        "definitions": {cls.type: _event_schema(cls) for cls in EVENT_TYPES.values()},
    }


if __name__ == "__main__":  # python -m llm_agent_magic.events --json-schema
    import argparse
    import json

    parser = argparse.ArgumentParser(description="The typed events of llm-agent-magic.")
    parser.add_argument("--json-schema", action="store_true", help="print the JSON schema of every event")
    if parser.parse_args().json_schema:
        print(json.dumps(json_schema(), indent=2))
    else:
        parser.print_help()
