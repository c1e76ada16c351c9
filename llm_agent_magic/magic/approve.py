"""``%%agent --approve``: Run / edit / skip for each generated cell, asked through the kernel's input request.

In a kernel, ``input()`` reaches the front end as an ``input_request`` (JupyterLab shows a text box
below the cell); in a terminal IPython it reads the terminal. The box takes one line at a time, so an
edit is typed line by line and ends with a line holding only ``.``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..events import ApprovalRequested
from ..run_requests import ApprovalReply

QUESTION = "Run / edit / skip [r/e/s]? "
END_OF_EDIT = "."
EDIT_HELP = "New code, one line at a time; a line with only . ends it:"
ANSWERS = {"r": "run", "run": "run", "e": "edit", "edit": "edit", "s": "skip", "skip": "skip"}

Ask = Callable[[str], str]


def kernel_takes_input(shell: Any) -> bool:
    """False when the front end that runs this cell cannot answer an input request (nbclient, ``llm-agent run``).

    ipykernel only says so through its private ``_allow_stdin`` (set per execute request); without a kernel
    (a terminal IPython) ``input()`` reads the terminal.
    """
    kernel = getattr(shell, "kernel", None)
    return kernel is None or bool(getattr(kernel, "_allow_stdin", True))


def _read_edit(ask: Ask) -> str:
    lines = [ask(EDIT_HELP + "\n")]
    while lines[-1].strip() != END_OF_EDIT:
        lines.append(ask(""))
    return "\n".join(lines[:-1])


def ask_approval(request: ApprovalRequested, ask: Ask, *, show_code: bool) -> ApprovalReply:
    """Ask until the answer is r, e (then the new code) or s; an empty or unknown answer asks again."""
    what = f"Generated cell, attempt {request.attempt}" + (f", after {request.reason}" if request.reason else "")
    prompt = f"{what}:\n{request.code.rstrip()}\n{QUESTION}" if show_code else f"{what}. {QUESTION}"
    while True:
        answer = ANSWERS.get(ask(prompt).strip().lower())
        if answer == "edit":
            source = _read_edit(ask)
            if source.strip():
                return ApprovalReply(request.run_id, request.cell_id, "edit", source)
            prompt = f"No new code was given. {QUESTION}"
        elif answer is not None:
            return ApprovalReply(request.run_id, request.cell_id, answer)
        else:
            prompt = f"Please answer r (run it), e (edit it first) or s (skip it). {QUESTION}"
