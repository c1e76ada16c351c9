"""The typed requests front ends send to a session (beside the events it sends back).

``RunRequest`` asks for an answer; ``StopRequest`` stops a run; ``ApprovalReply`` answers a cell that
waits for approval. Settings for one run (its mode, its model) travel in the request: the shared
configuration is never changed for one run. ``to_dict()`` is the wire format (the WebSocket, the
store); ``request_from_dict()`` reads one back and says plainly what is wrong with a malformed one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from .events import WireMessage
from .exceptions import BadContext, BadRequest
from .notebook_context import NotebookContext

#: What users may type for a mode, and the mode it means.
MODE_ALIASES = {"auto": "auto", "chat": "chat", "react": "react", "plan": "plan_execute", "plan_execute": "plan_execute"}
APPROVAL_ACTIONS = ("run", "edit", "skip")


@dataclass
class _Request(WireMessage):
    """Base of the requests front ends send."""


@dataclass
class RunRequest(_Request):
    """Answer ``request``. ``model``: for this run only. ``origin``: who asks ("magic", "panel", "batch", ...).

    ``approval``: True, each generated cell waits for an ``ApprovalReply`` before it runs; False, none does;
    None (the default), ``AgentConfig.approval`` decides.
    """

    type: ClassVar[str] = "run"
    request: str
    mode: str = "auto"
    model: str | None = None
    files: list[str] = field(default_factory=list)
    dry_run: bool = False
    approval: bool | None = None
    notebook_path: str = ""
    origin: str = ""
    #: The notebook's folder: an attached file inside it keeps its path relative to it in the workspace.
    folder: str = ""
    #: What the front end sees of the notebook (cells, selection, the user's variables); None: nothing.
    context: NotebookContext | None = None
    #: The folder whose file names and sizes the model is shown (``folder`` when empty). The server sets it to
    #: the notebook's folder inside its root, whatever a client sent.
    context_folder: str = ""
    #: The source of the user's cell this run fixes: its answer's corrected cell comes back as a ``FixProposed``.
    fix_of: str = ""

    def __post_init__(self) -> None:
        if self.context is not None:
            try:
                self.context = NotebookContext.from_dict(self.context)
            except BadContext as exc:
                raise BadRequest(str(exc)) from None
        if not isinstance(self.request, str) or not self.request.strip():
            raise BadRequest("The request is empty: say what you want the agent to do.")
        if not isinstance(self.mode, str) or self.mode not in MODE_ALIASES:
            raise BadRequest(f"Unknown mode {self.mode!r}; use one of {', '.join(MODE_ALIASES)}.")
        if self.model is not None and (not isinstance(self.model, str) or not self.model.strip()):
            raise BadRequest("The model must be a model name such as 'qwen3:8b', or left out.")
        if not isinstance(self.files, list) or not all(isinstance(f, str) for f in self.files):
            raise BadRequest("files must be a list of file names.")
        if not isinstance(self.folder, str) or not isinstance(self.context_folder, str):
            raise BadRequest("folder must be the path of the notebook's folder, or left out.")
        if self.approval is not None and not isinstance(self.approval, bool):
            raise BadRequest("approval must be true, false or left out (the session's setting).")
        if not isinstance(self.dry_run, bool):
            raise BadRequest("dry_run must be true or false.")
        if not isinstance(self.fix_of, str):
            raise BadRequest("fix_of is the source of the cell to fix, as text, or left out.")
        if not isinstance(self.notebook_path, str) or not isinstance(self.origin, str):
            raise BadRequest("notebook_path and origin must be strings, or left out.")

    @property
    def resolved_mode(self) -> str:
        """``auto``, ``chat``, ``react`` or ``plan_execute``."""
        return MODE_ALIASES[self.mode]


@dataclass
class StopRequest(_Request):
    type: ClassVar[str] = "stop"
    run_id: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.run_id, str):
            raise BadRequest(
                "A stop names the run_id (a string) of the run to stop, or leaves it out for the session's current run."
            )


@dataclass
class ApprovalReply(_Request):
    """Run, edit (with the new ``source``) or skip the cell ``cell_id`` of run ``run_id``."""

    type: ClassVar[str] = "approval"
    run_id: str
    cell_id: str
    action: str = "run"
    source: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.action, str) or self.action not in APPROVAL_ACTIONS:
            raise BadRequest(f"Unknown approval action {self.action!r}; use one of {', '.join(APPROVAL_ACTIONS)}.")
        if not isinstance(self.run_id, str) or not isinstance(self.cell_id, str) or not self.run_id or not self.cell_id:
            raise BadRequest("An approval names the run_id and cell_id of its approval_requested event.")
        if not isinstance(self.source, str):
            raise BadRequest("An approval's source is the cell's new code, as text.")
        if self.action == "edit" and not self.source.strip():
            raise BadRequest("An edit needs the cell's new source.")


REQUEST_TYPES: dict[str, type[_Request]] = {cls.type: cls for cls in (RunRequest, StopRequest, ApprovalReply)}


def request_from_dict(data: Mapping[str, Any]) -> RunRequest | StopRequest | ApprovalReply:
    """The request a wire dict describes; unknown keys are ignored (a newer client may send more)."""
    if not isinstance(data, Mapping):
        raise BadRequest("A request is a JSON object with a 'type' (run, stop or approval).")
    cls = REQUEST_TYPES.get(str(data.get("type", "")))
    if cls is None:
        raise BadRequest(f"Unknown request type {data.get('type')!r}; use one of {', '.join(REQUEST_TYPES)}.")
    names = {f.name for f in dataclasses.fields(cls)}
    try:
        return cls(**{k: v for k, v in data.items() if k in names})  # type: ignore[return-value]
    except TypeError as exc:
        raise BadRequest(f"A {cls.type} request is missing a field: {exc}") from None
