"""The sandbox: a sibling ipykernel per session that runs generated code, with isolation, variable
summaries and snapshots. Nothing here imports the agent, tools or front ends.

Map:
  ``kernel.py``       SandboxKernel, the public API: start, execute, variables, push, restart, stop, shutdown
  ``lifecycle.py``    its kernel's life: start or attach, readiness and restore, recovery from death, shutdown
  ``launch.py``       one kernel launched here or on a gateway, or attached to; the state file others attach by
  ``execution.py``    one cell: time limit, disk quota, output limits, what became of it (timeout, death)
  ``snapshot_files.py`` a session's snapshots read back here (within limits) or forgotten, no kernel needed
  ``wire.py``         one client's requests, replies and outputs over the kernel's channels
  ``results.py``      ExecutionResult, nbformat outputs, text for the model, plain-words death reasons
  ``collector.py``    iopub messages of one execution into outputs, within the output limits
  ``untrusted.py``    what comes back is hostile: inert MIME types only, HTML/SVG/markdown sanitized
  ``isolation.py``    levels, the layers each launch gets, the checks behind them; ``probe`` for doctor
  ``launch_plan.py``  argv (bubblewrap), environment and policy of one kernel launch; its fresh folders
  ``mounts.py``       what the sandbox sees, as bubblewrap mounts and as Landlock rules
  ``python_env.py``   which Python runs the sandbox; the environment allowlist
  ``gateway.py``      kernels on a Jupyter Kernel Gateway / Enterprise Gateway (jupyter_server's client); doctor's probe
  ``transport.py``    files and snapshots over the kernel protocol, for a kernel that shares no disk with us
  ``hold.py``         the run lock: one run at a time in a session's kernel, across processes (``SessionBusy``);
                      the lock around a kernel's start
  ``state.py``        the kernel's state file and the holder's file; pid helpers (a reused pid is not ours)
  ``kernel_log.py``   the kernel's own log, rotated at each launch; its tail for error messages
  ``loop.py``         the private event loop all sandbox kernels of a process run on; ``run_sync``
  ``quota.py``        the disk quota, watched while code runs
  ``paths.py``        session folders
  ``inside/``         what runs inside the sandbox's Python, standard library only at import time: the
                      kernel process's entry point, Landlock, seccomp, the audit hook, summaries,
                      snapshots, their catalog and restore, confined file access, atomic writes (see its
                      ``__init__``)
"""

from __future__ import annotations

from typing import Any

from llm_agent_magic.config import PathsConfig, SandboxConfig

from .inside.summaries import VariableSummary, render_summaries
from .isolation import IsolationReport, LayerCheck, analysis_imports, probe
from .kernel import SandboxKernel
from .paths import SessionPaths
from .results import ExecutionResult
from .snapshot_files import load_snapshot

__all__ = [
    "LayerCheck",
    "ExecutionResult",
    "IsolationReport",
    "SandboxKernel",
    "SessionPaths",
    "VariableSummary",
    "analysis_imports",
    "load_variable",
    "probe",
    "render_summaries",
]


def load_variable(
    session_id: str,
    name: str,
    paths: PathsConfig | None = None,
    config: SandboxConfig | None = None,
    *,
    set_aside: bool = True,
) -> Any:
    """Read variable ``name`` from a session's snapshots into this process (no kernel needed).

    The snapshots were written by the sandbox, so they are checked first: only the variable's own file
    in the snapshots folder, a regular file, within ``config``'s ``snapshot_max_rows`` and
    ``snapshot_max_mb``. Raises ``SnapshotNotFound`` (a KeyError) naming the variables that were saved,
    and why this one was not saved or was refused. DataFrames are written in the background after a
    cell's reply: if a kernel may still be writing, call its ``flush_snapshots()`` first
    (``SandboxKernel.load`` does). ``set_aside=False`` leaves an unusable catalog where it is.
    """
    return load_snapshot(SessionPaths.for_session(session_id, paths), name, config, set_aside=set_aside)
