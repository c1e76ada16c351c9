"""The user's variables as the model may see them: names, types, shapes and DataFrame columns, never values.

The magic reads them from its shell; the panel asks the notebook's kernel for the same through a user
expression (``PanelVariables()``, evaluated without running a cell, storing nothing, changing no variable), whose
plain-text rendering is the JSON list the server's ``RunRequest.context.variables`` takes.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from ..agents.context import describe_variables
from ..notebook_context import ContextVariable


def user_variables(shell: Any) -> list[ContextVariable]:
    """The variables of ``shell``'s namespace the user made (not the shell's own: ``In``, ``Out``, ``_``...)."""
    hidden = getattr(shell, "user_ns_hidden", {})
    return describe_variables({k: v for k, v in shell.user_ns.items() if k not in hidden})


class PanelVariables:
    """``repr()`` is the JSON of this kernel's user variables (what a user expression's text/plain carries)."""

    def __repr__(self) -> str:
        from IPython import get_ipython

        shell = get_ipython()
        return json.dumps([asdict(v) for v in user_variables(shell)] if shell is not None else [])
