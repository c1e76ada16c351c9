"""``%%sandbox``: a cell that runs in the session's sandbox kernel, shown here as the agent's executions are.

The execution itself is the session's (``AgentSession.execute_cell``: same kernel, limits, output cleaning,
snapshots and run lock as the agent's code); this module only parses the line and puts the sandbox's
outputs (already cleaned and bounded by the sandbox's collector) into this cell. An execution that failed
raises ``SandboxCellFailed`` with the sandbox's traceback, so Run All stops at the cell as at any failing cell.

``--skip`` marks a cell that is kept for the record and not run (a generated cell the user skipped when
asked, or a failed attempt): it prints why and runs nothing, so Run All goes past it.
"""

from __future__ import annotations

import sys
from typing import Any

from IPython.display import display

from ..agents.manager import ExecutionResult
from ..cells import SKIP_FLAG
from ..exceptions import SandboxCellFailed

SKIPPED_NOTE = "Not run: this cell is marked --skip (remove --skip from its first line to run it in the sandbox)."


def show_outputs(outputs: list[dict[str, Any]]) -> None:
    """The sandbox's nbformat outputs as this cell's outputs; results appear as displays (no Out[n] here)."""
    for out in outputs:
        kind = out.get("output_type")
        if kind == "stream":
            stream = sys.stderr if out.get("name") == "stderr" else sys.stdout
            stream.write(str(out.get("text", "")))
            stream.flush()
        elif kind in ("display_data", "execute_result"):
            sys.stdout.flush()
            display(dict(out.get("data", {})), metadata=dict(out.get("metadata", {})), raw=True)


def raise_if_failed(result: ExecutionResult) -> None:
    if result.ok:
        return
    error = result.error or {}
    raise SandboxCellFailed(
        result.status,
        str(error.get("ename", "")),
        str(error.get("evalue", "") or result.message),
        [str(line) for line in error.get("traceback") or []],
    )


__all__ = ["SKIPPED_NOTE", "SKIP_FLAG", "raise_if_failed", "show_outputs"]
