"""Starting a session's kernel: launch one here (bubblewrap, Landlock and limits per ``launch_plan.py``), have a
gateway start one, or attach to the one another process launched; and the state file that lets others attach.

Each function is called under the session's start lock (``hold.session_lock``) by ``SandboxKernel``, which
keeps what they return and owns the kernel's shutdown (``shutdown.py``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import stat
import time
import uuid
from typing import Any

from jupyter_client.asynchronous.client import AsyncKernelClient
from jupyter_client.kernelspec import KernelSpecManager

from llm_agent_magic import atomic
from llm_agent_magic.config import SandboxConfig

from . import isolation
from .kernel_log import rotate_log
from .launch_plan import build_launch, prepare_launch
from .paths import SessionPaths
from .python_env import sandbox_python
from .state import pid_alive, process_start_time, read_json

SPEC_NAME = "llm-agent-sandbox"
KERNEL_ARGS = ["--HistoryManager.enabled=False", "--InteractiveShell.colors=nocolor"]
#: Pids of the kernels SandboxKernels of this process launched and still own.
launched_here: set[int] = set()


@dataclasses.dataclass
class Started:
    """A kernel just launched or attached to: its client, its manager (None when attached) and what it runs."""

    kc: Any
    km: Any
    pid: int | None
    pid_start: str
    level: str | None
    layers: isolation.Layers
    launch_id: str = ""


def attach(paths: SessionPaths) -> Started | None:
    """A client of the session's live kernel, whoever launched it; None when there is none."""
    state = read_json(paths.state_file)
    if not state or not pid_alive(state.get("pid"), state.get("pid_start", "")):
        return None
    connection_file = paths.connection_file(state.get("launch_id", ""))
    if not connection_file.exists():
        return None
    kc = AsyncKernelClient(connection_file=str(connection_file))
    kc.load_connection_file()
    kc.allow_stdin = False
    kc.start_channels(shell=True, iopub=True, stdin=False, hb=False, control=True)
    level = state.get("level")
    try:
        layers = isolation.Layers(**state["layers"])
    except (KeyError, TypeError):
        layers = isolation.Layers(str(level))
    return Started(kc, None, state["pid"], state.get("pid_start", ""), level, layers)


async def launch_local(config: SandboxConfig, paths: SessionPaths, layers: isolation.Layers) -> Started:
    """Launch the session's kernel on this machine, at ``layers``' level, and record it in the state file."""
    runtime = await asyncio.to_thread(sandbox_python, config)
    prepare_launch(paths)
    launch_id = uuid.uuid4().hex[:8]
    plan = build_launch(config, paths, layers, runtime, paths.connection_file(launch_id))
    kernel_dir = paths.kernel
    atomic.write_text(kernel_dir / "policy.json", json.dumps(plan.policy, indent=1), mode=0o644)
    spec_dir = kernel_dir / "spec" / SPEC_NAME
    spec_dir.mkdir(parents=True, exist_ok=True)
    spec = {
        "argv": plan.argv + ["-f", "{connection_file}", *KERNEL_ARGS],
        "display_name": "llm-agent sandbox",
        "language": "python",
        "interrupt_mode": "message",
        "metadata": {"debugger": False},
    }
    atomic.write_text(spec_dir / "kernel.json", json.dumps(spec, indent=1), mode=0o644)
    remove_stale_files(paths)
    km = config.kernel_manager_class(
        kernel_name=SPEC_NAME,
        kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(kernel_dir / "spec")]),
        transport="ipc",
        ip=str(paths.ipc_dir / launch_id),
        connection_file=str(paths.connection_file(launch_id)),
    )
    km.shutdown_wait_time = 2.0
    rotate_log(paths.log_file)  # the log of the kernel this one replaces tells why it died
    # The file is handed to the kernel process as its stdout and stderr: opening it does not wait on anything.
    with open(paths.log_file, "wb") as logf:  # noqa: ASYNC230
        await km.start_kernel(env=plan.env, cwd=str(paths.workspace), stdout=logf, stderr=logf)
    pid = getattr(km.provisioner, "pid", None)
    if pid:
        launched_here.add(pid)
    try:
        pid_start = process_start_time(pid) if pid else ""
        _write_state(
            paths,
            {
                "pid": pid,
                "pid_start": pid_start,
                "level": layers.level,
                "layers": dataclasses.asdict(layers),
                "launch_id": launch_id,
                "python": runtime.executable,
            },
        )
        kc = km.client()
        kc.allow_stdin = False
        kc.start_channels(shell=True, iopub=True, stdin=False, hb=False, control=True)
    except BaseException:  # nobody else knows this kernel yet: it must not outlive the failed launch
        await km.shutdown_kernel(now=True)
        launched_here.discard(pid or 0)
        raise
    return Started(kc, km, pid, pid_start, layers.level, layers, launch_id)


async def launch_on_gateway(config: SandboxConfig, paths: SessionPaths, session_id: str, layers: isolation.Layers) -> Started:
    """A kernel the gateway starts where it runs kernels; the sandbox is set up in it once it answers."""
    from . import gateway  # jupyter_server's gateway client: imported only by sessions that use one

    paths.ensure()
    km, kc = await gateway.start_kernel(config, session_id)
    launch_id = uuid.uuid4().hex[:8]
    try:
        _write_state(
            paths,
            {
                "pid": None,
                "level": layers.level,
                "layers": dataclasses.asdict(layers),
                "launch_id": launch_id,
                "gateway": config.gateway_url,
                "kernel_id": getattr(km, "kernel_id", None),
                "kernel_name": gateway.kernel_name(config),
            },
        )
    except BaseException:  # a kernel nobody can find again must not be left running on the gateway
        await km.shutdown_kernel(now=True)
        raise
    return Started(kc, km, None, "", layers.level, layers, launch_id)


def _write_state(paths: SessionPaths, state: dict[str, Any]) -> None:
    """The state file other processes attach by, naming this process as the kernel's launcher."""
    owner = {"owner_pid": os.getpid(), "owner_start": process_start_time(os.getpid()), "started": time.time()}
    atomic.write_text(paths.state_file, json.dumps({**state, **owner}, indent=1))


def remove_stale_files(paths: SessionPaths) -> None:
    """Connection files and sockets of dead launches (called under the session lock, with no live kernel)."""
    for old in paths.kernel.glob("connection-*.json"):
        old.unlink(missing_ok=True)
    for entry in paths.ipc_dir.iterdir():
        if stat.S_ISSOCK(entry.lstat().st_mode):
            entry.unlink(missing_ok=True)
