"""``llm-agent run``: execute notebooks headless, leaving each ``%%agent`` cell's generated cells behind.

Each notebook runs in its own kernel through nbclient, in the notebook's folder. The kernel
learns what the command line asked for through its environment (``magic/sessions.py`` reads it):
the session id, the cassette, fresh sessions, and settings such as ``--model``. After the run,
the cells bundle of every ``%%agent`` cell is written as real code cells below it, with their
outputs and ``metadata.llm_agent`` provenance.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from traitlets import Bool, Float, Int, Unicode

from .. import atomic
from ..cells import bundle_problem, cell_bundles, drop_materialized, materialize
from ..config import CONFIG_CLASSES
from ..exceptions import UsageProblem
from ..magic import env as kernel_env
from .app import LLMAgentApp

if TYPE_CHECKING:  # nbformat is imported where a notebook is read: with jsonschema it is a second of every command's start
    import nbformat

DEFAULT_KERNEL = "python3"


def kernel_transport(folder: str) -> Any:
    """The kernel's channels as Unix sockets in ``folder``, not TCP on loopback: nothing else on the machine can
    connect to them, and ipykernel has no reason to warn that it runs "over TCP without encryption"."""
    from traitlets.config import Config

    if sys.platform == "win32":  # no ipc transport there
        return Config()
    return Config({"KernelManager": {"transport": "ipc", "ip": os.path.join(folder, "kernel")}})


@dataclass
class NotebookJob:
    """One notebook to run: where it is, where its result goes, and what its kernel is told."""

    source: Path
    output: Path
    env: dict[str, str]
    session_id: str
    cassette: tuple[str, str] | None = None


@dataclass
class NotebookResult:
    job: NotebookJob
    cells_run: int = 0
    generated: int = 0
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failures


# --- planning: the command line into jobs ------------------------------------------------------------


def _stem(path: Path) -> str:
    return path.name[: -len(".ipynb")] if path.name.endswith(".ipynb") else path.stem


def output_path(source: Path, output: str, output_dir: str) -> Path:
    if output:
        return Path(output).resolve()
    if output_dir:
        return Path(output_dir).resolve() / source.name
    return source.with_name(f"{_stem(source)}.out.ipynb")


def forwarded_config(cli_config: Any) -> dict[str, dict[str, Any]]:
    """The command line's settings of our classes, for the kernels (relative paths made absolute)."""
    names = {cls.__name__ for cls in CONFIG_CLASSES}
    out: dict[str, dict[str, Any]] = {}
    for section in sorted(names):
        if section in cli_config and cli_config[section]:
            out[section] = dict(cli_config[section].items())
    paths = out.get("PathsConfig", {})
    if paths.get("data_root"):
        paths["data_root"] = str(Path(paths["data_root"]).expanduser().resolve())
    return out


def plan_jobs(  # noqa: C901  # every option of `llm-agent run` checked in one place, in the order its errors are reported
    notebooks: list[str],
    *,
    output: str = "",
    output_dir: str = "",
    jobs: int = 1,
    replay: str = "",
    record: str = "",
    live: bool = False,
    session: str = "",
    fresh: bool = True,
    settings: dict[str, Any] | None = None,
    base_env: dict[str, str] | None = None,
) -> list[NotebookJob]:
    """Check the command line and decide, per notebook, its output and its kernel's environment."""
    if not notebooks:
        raise UsageProblem("name at least one notebook to run")
    sources = []
    for name in notebooks:
        path = Path(name).expanduser().resolve()
        if not path.is_file():
            raise UsageProblem(f"{name}: no such notebook")
        if path not in sources:
            sources.append(path)
    if output and output_dir:
        raise UsageProblem("use either -o/--output or --output-dir, not both")
    if output and len(sources) > 1:
        raise UsageProblem("-o/--output takes one notebook; use --output-dir for several")
    if jobs < 1:
        raise UsageProblem("-j/--jobs must be at least 1")
    chosen = [(m, p) for m, p in (("replay", replay), ("record", record), ("live", live)) if p]
    if len(chosen) > 1:
        raise UsageProblem("choose one of --replay, --record and --live")
    if record and len(sources) > 1 and "{name}" not in record:
        raise UsageProblem(
            "several notebooks cannot record into one cassette; put {name} in the path (it becomes each "
            "notebook's name), e.g. --record 'cassettes/{name}.jsonl'"
        )
    if session and len(sources) > 1 and jobs > 1 and "{name}" not in session:
        raise UsageProblem("notebooks running in parallel cannot share one session; put {name} in --session or use -j 1")
    planned = []
    outputs: set[Path] = set()
    for source in sources:
        out = output_path(source, output, output_dir)
        if out in outputs or out == source:
            raise UsageProblem(f"{source.name}: its output {out} would overwrite another file of this run")
        outputs.add(out)
        env = dict(base_env if base_env is not None else os.environ)
        session_id = session.replace("{name}", _stem(source)) if session else f"{source}#run"
        env[kernel_env.SESSION] = session_id
        env[kernel_env.FRESH_SESSION] = "1" if fresh else "0"
        cassette = None
        if chosen:
            mode, value = chosen[0]
            cassette_path = (
                "" if mode == "live" else str(Path(str(value).replace("{name}", _stem(source))).expanduser().resolve())
            )
            cassette = (mode, cassette_path)
            env[kernel_env.CASSETTE_MODE], env[kernel_env.CASSETTE_PATH] = mode, cassette_path
        else:
            env.pop(kernel_env.CASSETTE_MODE, None)
            env.pop(kernel_env.CASSETTE_PATH, None)
        if settings:
            try:
                env[kernel_env.CONFIG_JSON] = json.dumps(settings)
            except (TypeError, ValueError) as exc:
                raise UsageProblem(f"these settings cannot be passed to the kernels: {exc}") from None
        planned.append(NotebookJob(source, out, env, session_id, cassette))
    return planned


def kernel_name_for(nb: nbformat.NotebookNode) -> str:
    """The notebook's kernel when it is installed, else this Python's ``python3``."""
    from jupyter_client.kernelspec import KernelSpecManager

    wanted = nb.metadata.get("kernelspec", {}).get("name") or DEFAULT_KERNEL
    return wanted if wanted in KernelSpecManager().find_kernel_specs() else DEFAULT_KERNEL


def _first_line(cell: nbformat.NotebookNode) -> str:
    line = cell.source.strip().splitlines()[0] if cell.source.strip() else ""
    return line if len(line) <= 60 else line[:57] + "..."


def _error_text(exc: BaseException) -> str:
    ename, evalue = getattr(exc, "ename", ""), getattr(exc, "evalue", "")
    if ename:
        return f"{ename}: {evalue}".strip().rstrip(":")
    return f"{type(exc).__name__}: {exc}".splitlines()[0]


# --- running -------------------------------------------------------------------------------------------


class Progress:
    """One line per notebook event and per cell, on stderr."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr

    def say(self, text: str) -> None:
        print(text, file=self.stream, flush=True)


async def run_notebook(
    job: NotebookJob,
    *,
    timeout: float = 0.0,
    include_failed: bool = True,
    progress: Progress | None = None,
    slot: asyncio.Semaphore | None = None,
) -> NotebookResult:
    """Execute one notebook, materialize its generated cells and write the result; never raises for failures.

    ``slot`` is held while the notebook executes and given back before its kernel shuts down, so the
    next notebook starts while this one's kernel and sandbox wind down.
    """
    held = slot is not None
    if slot is not None:
        await slot.acquire()

    def release() -> None:
        nonlocal held
        if held and slot is not None:
            slot.release()
            held = False

    try:
        return await _run_notebook(job, timeout, include_failed, progress or Progress(), release)
    finally:
        release()


async def _run_notebook(
    job: NotebookJob, timeout: float, include_failed: bool, progress: Progress, release: Callable[[], None]
) -> NotebookResult:
    import nbformat
    from jupyter_core.utils import ensure_async
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, DeadKernelError

    result = NotebookResult(job)
    started = time.monotonic()
    name = job.source.name
    try:
        nb = nbformat.read(job.source, as_version=4)
    except Exception as exc:  # noqa: BLE001  # not JSON, or not a notebook
        result.failures.append(f"could not read the notebook: {_error_text(exc)}")
        progress.say(f"[{name}] FAILED: {result.failures[0]}")
        return result
    drop_materialized(nb)
    kernel = kernel_name_for(nb)
    sockets = tempfile.TemporaryDirectory(prefix="llm-agent-kernel-")
    client = NotebookClient(
        nb,
        kernel_name=kernel,
        timeout=timeout or None,
        interrupt_on_timeout=True,
        record_timing=False,
        error_on_timeout={
            "ename": "CellTimeoutError",
            "evalue": f"the cell ran longer than {timeout:g} s",
            "traceback": [f"CellTimeoutError: the cell ran longer than {timeout:g} s"],
        },
        resources={"metadata": {"path": str(job.source.parent)}},
        config=kernel_transport(sockets.name),
    )
    cassette = f", cassette {' '.join(p for p in job.cassette if p)}" if job.cassette else ""
    progress.say(f"[{name}] start (kernel {kernel}, session {job.session_id}{cassette})")
    code = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and c.source.strip()]
    try:
        async with client.async_setup_kernel(env=job.env):
            assert client.kc is not None
            client.reset_execution_trackers()
            info = await client.async_wait_for_reply(await ensure_async(client.kc.kernel_info()))
            if info is not None and "language_info" in info["content"]:
                nb.metadata["language_info"] = info["content"]["language_info"]
            progress.say(f"[{name}] kernel ready ({time.monotonic() - started:.1f} s)")
            for n, index in enumerate(code, 1):
                cell = nb.cells[index]
                label = f"[{name}] cell {n}/{len(code)} {_first_line(cell)!r}"
                cell_started = time.monotonic()
                try:
                    await client.async_execute_cell(cell, index, execution_count=client.code_cells_executed + 1)
                except CellExecutionError as exc:
                    result.failures.append(f"cell {n} ({_first_line(cell)}): {_error_text(exc)}")
                    progress.say(f"{label}: FAILED {_error_text(exc)}")
                    break
                result.cells_run += 1
                notes, state = [], "ok"
                for bundle in cell_bundles(cell):
                    count = len(bundle.get("cells", []))
                    notes.append(f"agent {bundle.get('status')}, {count} generated cell{'s' if count != 1 else ''}")
                    problem = bundle_problem(bundle)
                    if problem:
                        result.failures.append(f"cell {n} ({_first_line(cell)}): {problem}")
                        state = "AGENT FAILED"
                notes.append(f"{time.monotonic() - cell_started:.1f} s")
                progress.say(f"{label}: {state} ({'; '.join(notes)})")
            release()
    except DeadKernelError as exc:
        result.failures.append(f"the kernel died: {exc}")
    except Exception as exc:  # noqa: BLE001  # the kernel did not start, or the client failed: the notebook failed
        result.failures.append(f"could not run the notebook: {_error_text(exc)}")
    finally:
        sockets.cleanup()
    progress.say(f"[{name}] kernel stopped ({time.monotonic() - started:.1f} s)")
    result.generated = materialize(nb, include_failed)
    try:
        job.output.parent.mkdir(parents=True, exist_ok=True)
        # Never signed: JupyterLab shows the outputs of a notebook it has no signature for as untrusted
        # (HTML sanitized, no scripts) until the user runs the cells or trusts the notebook.
        atomic.write_text(job.output, lambda fh: nbformat.write(nb, fh), mode=0o666)
    except OSError as exc:
        result.failures.append(f"could not write {job.output}: {exc}")
    result.seconds = time.monotonic() - started
    state = "ok" if result.ok else "FAILED"
    progress.say(
        f"[{name}] {state}: {result.cells_run} cells run, {result.generated} generated cells written to "
        f"{job.output} ({result.seconds:.1f} s)"
    )
    return result


async def run_notebooks(
    jobs: list[NotebookJob],
    *,
    parallel: int = 1,
    timeout: float = 0.0,
    include_failed: bool = True,
    progress: Progress | None = None,
) -> list[NotebookResult]:
    """Run the jobs, at most ``parallel`` at a time (each notebook in its own kernel process)."""
    progress = progress or Progress()
    slot = asyncio.Semaphore(max(1, parallel))
    for job in jobs:
        if job.cassette and job.cassette[0] == "record" and os.path.exists(job.cassette[1]):  # noqa: ASYNC240  # one stat a notebook
            os.unlink(job.cassette[1])  # a new recording starts empty; stale answers would be replayed first
    return list(
        await asyncio.gather(
            *(run_notebook(job, timeout=timeout, include_failed=include_failed, progress=progress, slot=slot) for job in jobs)
        )
    )


def summary(results: list[NotebookResult]) -> str:
    failed = [r for r in results if not r.ok]
    head = f"llm-agent run: {len(results)} notebook{'s' if len(results) != 1 else ''}, " + (
        f"{len(failed)} failed" if failed else "all ok"
    )
    lines = [head]
    for r in results:
        lines.append(f"  {'ok    ' if r.ok else 'FAILED'}  {r.job.source.name} -> {r.job.output}")
        lines += [f"          {problem}" for problem in r.failures]
    return "\n".join(lines)


class RunApp(LLMAgentApp):
    name = "llm-agent run"
    description = "Execute notebooks headless; each %%agent cell leaves its generated cells behind as real cells."
    examples = """
    llm-agent run analysis.ipynb                        # writes analysis.out.ipynb
    llm-agent run a.ipynb b.ipynb -j 2 --output-dir out
    llm-agent run analysis.ipynb --replay analysis.cassette.jsonl
    llm-agent run *.ipynb --record 'cassettes/{name}.jsonl' --model qwen3:8b
    """
    output = Unicode(
        "", help="Where to write the executed notebook (one notebook only). Default: <name>.out.ipynb beside the input."
    ).tag(config=True)
    output_dir = Unicode("", help="Folder for the executed notebooks (same file names).").tag(config=True)
    jobs = Int(1, help="Notebooks run in parallel, each in its own kernel.").tag(config=True)
    replay = Unicode(
        "",
        help="Answer from this cassette instead of the model ({name}: the notebook's name); "
        "wins over %agent record/replay in the notebooks.",
    ).tag(config=True)
    record = Unicode("", help="Record the model's answers to this cassette ({name}: the notebook's name).").tag(config=True)
    live = Bool(False, help="Call the model even where a notebook says %agent replay.").tag(config=True)
    timeout = Float(0.0, help="Seconds one cell may run before it is interrupted and the notebook fails (0: no limit).").tag(
        config=True
    )
    session = Unicode(
        "",
        help="Session id for the %%agent cells ({name}: the notebook's name). Default: one per notebook, '<notebook path>#run'.",
    ).tag(config=True)
    fresh = Bool(
        True,
        help="Start each notebook's session empty (no conversation, no variables), as a kernel "
        "restart would; --continue keeps what the session has.",
    ).tag(config=True)
    aliases = {
        **LLMAgentApp.aliases,
        ("o", "output"): "RunApp.output",
        "output-dir": "RunApp.output_dir",
        ("j", "jobs"): "RunApp.jobs",
        "replay": "RunApp.replay",
        "record": "RunApp.record",
        "timeout": "RunApp.timeout",
        "session": "RunApp.session",
    }
    flags = {
        "live": ({"RunApp": {"live": True}}, "Call the model even where a notebook says %agent replay."),
        "continue": ({"RunApp": {"fresh": False}}, "Keep the sessions' conversation and variables."),
    }

    def start(self) -> None:
        try:
            jobs = plan_jobs(
                list(self.extra_args),
                output=self.output,
                output_dir=self.output_dir,
                jobs=self.jobs,
                replay=self.replay,
                record=self.record,
                live=self.live,
                session=self.session,
                fresh=self.fresh,
                settings=forwarded_config(self.cli_config),
            )
        except UsageProblem as exc:
            print(
                f"llm-agent run: {exc}\nusage: llm-agent run NOTEBOOK... [-o OUT | --output-dir DIR] [-j N] "
                f"[--replay CASSETTE | --record CASSETTE | --live] [--timeout S] [--session ID]",
                file=sys.stderr,
            )
            self.exit(2)
        try:
            results = asyncio.run(
                run_notebooks(
                    jobs, parallel=self.jobs, timeout=self.timeout, include_failed=self.agent_config.include_failed_cells
                )
            )
        except KeyboardInterrupt:
            print("llm-agent run: interrupted; the kernels were shut down.", file=sys.stderr)
            self.exit(130)
        print(summary(results), file=sys.stderr)
        self.exit(0 if all(r.ok for r in results) else 1)
