"""Run an eval: each (model, question) as a fresh session, at most ``parallel`` at a time, scored as it ends.

Every question gets its own ``SessionManager`` and data root (``<question folder>/agent-data``), so its
conversation, sandbox kernel and call log are its own, and the session runs through ``AgentSession.run()``
as in every front end: the table attached as a file, the model and mode in the ``RunRequest``. The data root
is removed after the run (it holds a copy of the table and the snapshots); the call log is kept.

Cassettes: ``replay`` serves every question from one cassette file. ``record`` records each question into
its own ``cassette.jsonl`` (concurrent sessions must not share one writer) and appends it to the cassette
file once the question is done, so an interrupted recording keeps what finished and ``--resume`` adds to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from traitlets.config import Config

from .. import atomic
from ..agents.manager import SessionManager
from ..events import Event
from ..exceptions import LLMAgentError, UsageProblem
from ..run_requests import RunRequest
from ..run_summary import RunSummary
from . import records
from .dataset import Dataset, Question
from .records import Cost, QuestionResult
from .scoring import score
from .variants import variant_config

_log = logging.getLogger(__name__)
MODES = ("auto", "react", "plan")
SESSION_DATA = "agent-data"


@dataclass
class EvalPlan:
    """What an eval runs, as ``eval.json`` in the output folder keeps it (``--resume`` reads it back)."""

    questions: str
    labels: str
    tables: str
    ids: list[str]
    models: list[str]
    mode: str = "auto"
    timeout: float = 0.0
    cassette_mode: str = "live"
    cassette: str = ""
    #: Variant name -> its settings (``--variant``); empty: one run of each question per model.
    variants: dict[str, list[str]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def arms(self) -> list[tuple[str, str]]:
        """(model, variant) of each column of the summary, models first; variant "" when there are none."""
        return [(m, v) for m in self.models for v in (list(self.variants) or [""])]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EvalPlan:
        """The plan an ``eval.json`` holds; a ValueError saying what is wrong with one of the wrong shape."""
        if not isinstance(data, dict):
            raise ValueError("it is not a JSON object")
        names = set(cls.__dataclass_fields__)
        plan = cls(**{k: v for k, v in data.items() if k in names})
        texts = (plan.questions, plan.labels, plan.tables, plan.cassette, plan.mode, plan.cassette_mode)
        if not all(isinstance(t, str) for t in texts) or not isinstance(plan.timeout, (int, float)):
            raise ValueError("a field has the wrong type")
        for key in ("ids", "models"):
            value = getattr(plan, key)
            if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
                raise ValueError(f"{key!r} must be a non-empty list of names")
        if plan.mode not in MODES or plan.cassette_mode not in ("live", "record", "replay"):
            raise ValueError("its mode or cassette_mode is not one this version knows")
        if not isinstance(plan.variants, dict) or not all(
            isinstance(k, str) and k and isinstance(v, list) and all(isinstance(x, str) for x in v)
            for k, v in plan.variants.items()
        ):
            raise ValueError("'variants' must map names to lists of settings")
        return plan


@dataclass
class Job:
    model: str
    question: Question
    folder: Path
    variant: str = ""


def arm_label(model: str, variant: str) -> str:
    """The summary's name of a column: the model, and the variant when there are variants."""
    return f"{model} [{variant}]" if variant else model


def arm_folder(model: str, variant: str) -> str:
    return f"{records.slug(model)}--{records.slug(variant)}" if variant else model


@dataclass
class EvalRun:
    plan: EvalPlan
    dataset: Dataset
    out: Path
    results: list[QuestionResult] = field(default_factory=list)
    #: Results found in the output folder and not run again (``--resume``).
    resumed: int = 0
    seconds: float = 0.0


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise UsageProblem(f"--mode must be one of {', '.join(MODES)}, not {mode!r}")
    return mode


def jobs_of(plan: EvalPlan, dataset: Dataset, out: Path) -> list[Job]:
    """One job per model, variant and question, side by side: every column's first question before any second."""
    slugs = [records.slug(arm_folder(m, v)) for m, v in plan.arms()]
    if len(set(slugs)) != len(slugs):
        raise UsageProblem(
            f"--model and --variant names {plan.models} {list(plan.variants)} give the same folder name twice; name each once"
        )
    folders: dict[str, str] = {}
    for q in dataset.questions:
        other = folders.setdefault(records.slug(q.id), q.id)
        if other != q.id:
            raise UsageProblem(f"question ids {other!r} and {q.id!r} would share one folder; leave one out with --ids")
    return [Job(m, q, records.question_dir(out, arm_folder(m, v), q.id), v) for q in dataset.questions for m, v in plan.arms()]


class CassetteFile:
    """The cassette an eval records into: each finished question's own recording appended to it."""

    def __init__(self, path: Path, *, fresh: bool):
        self.path = path
        self.header: dict[str, Any] = {}
        self.lines: list[str] = []
        if not fresh and path.is_file():
            for line in path.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    self._take(line)

    def _take(self, line: str) -> None:
        item = json.loads(line)
        if "llm_agent_cassette" in item:
            models = sorted(set(self.header.get("models", [])) | set(item.get("models", [])))
            self.header = {**item, **self.header, "models": models}
        else:
            self.lines.append(line)

    def append(self, recording: Path) -> None:
        if not recording.is_file():
            return  # the run made no model call (it failed before one)
        for line in recording.read_text(encoding="utf-8").splitlines():
            if line.strip():
                self._take(line)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        header = self.header or {"llm_agent_cassette": 1}
        atomic.write_text(self.path, "\n".join([json.dumps(header, ensure_ascii=False), *self.lines]) + "\n", mode=0o666)


def session_config(job: Job, plan: EvalPlan) -> Config:
    """What this run imposes on its question's session: its variant's settings, its own data root, its cassette."""
    imposed = variant_config(plan.variants[job.variant]) if job.variant else Config()
    imposed.PathsConfig.data_root = str(job.folder / SESSION_DATA)
    if plan.cassette_mode == "replay":
        imposed.LLMConfig.cassette_mode, imposed.LLMConfig.cassette_path = "replay", plan.cassette
    elif plan.cassette_mode == "record":
        imposed.LLMConfig.cassette_mode = "record"
        imposed.LLMConfig.cassette_path = str(job.folder / "cassette.jsonl")
    else:
        imposed.LLMConfig.cassette_mode = "live"
    return imposed


async def run_question(
    job: Job,
    plan: EvalPlan,
    dataset: Dataset,
    base: Config,
    release: Callable[[], None] = lambda: None,
    cleanups: list[asyncio.Future[None]] | None = None,
) -> QuestionResult:
    """Run one question in a fresh session and write its folder; never raises for what went wrong in the run.

    The session's data root is removed in a worker thread (``cleanups`` collects those, for the caller to
    await): deleting a kernel's files is slow and nothing waits for it.
    """
    started = time.perf_counter()
    question, label = job.question, dataset.labels[job.question.id]
    shutil.rmtree(job.folder, ignore_errors=True)  # what an interrupted earlier attempt left
    job.folder.mkdir(parents=True, exist_ok=True)
    imposed = session_config(job, plan)
    manager = SessionManager(explicit=lambda: base, imposed=lambda: imposed, front_end="llm-agent eval")
    events: list[Event] = []
    status, error = "ok", ""
    timing = {"open": 0.0, "run": 0.0, "close": 0.0}
    phase, mark = "open", time.perf_counter()

    async def drive() -> None:
        nonlocal phase, mark
        session = await manager.open(f"dabench-{records.slug(question.id)}", fresh=True)
        timing["open"], phase, mark = time.perf_counter() - mark, "run", time.perf_counter()
        # No one is there to approve cells, whatever AgentConfig.approval says.
        request = RunRequest(
            question.request(),
            mode=plan.mode,
            model=job.model,
            approval=False,
            files=[str(dataset.table(question))],
            origin="eval",
        )
        async for event in manager.runs.run(session.session_id, request):  # a timeout lands inside: the run stops
            events.append(event)

    try:
        await asyncio.wait_for(drive(), plan.timeout or None)
    except asyncio.TimeoutError as exc:
        if plan.timeout:
            status, error = "timeout", f"the question took longer than {plan.timeout:g} s (--timeout)"
        else:  # not ours: something below gave up waiting
            status, error = "error", f"TimeoutError: {exc}"
    except LLMAgentError as exc:  # e.g. the session could not be opened: the message says why
        status, error = "error", str(exc)
    except Exception as exc:  # noqa: BLE001  # a bug must not stop the other questions; it is counted and logged
        _log.exception("eval question %s (%s) failed", question.id, job.model)
        status, error = "error", f"internal error: {exc!r}"
    finally:
        timing[phase] = time.perf_counter() - mark
        release()  # the next question starts while this one's sandbox shuts down
        mark = time.perf_counter()
        with contextlib.suppress(Exception):
            await manager.close_all()
        timing["close"] = time.perf_counter() - mark
    summary = RunSummary.of(events)
    if status == "ok" and summary.finished != "ok":
        status = "error"
        error = "; ".join(summary.error_lines()) or f"the run ended with status {summary.status()!r}"
    answer = summary.answer or ""
    result = QuestionResult(
        id=question.id,
        model=job.model,
        variant=job.variant,
        level=question.level,
        file_name=question.file_name,
        status=status,
        answer=answer,
        error=error,
        score=score(answer, label),
        cost=Cost(summary.calls, summary.prompt_tokens, summary.completion_tokens, round(summary.call_seconds, 4)),
        run_id=events[0].run_id if events else "",
    )
    data = job.folder / SESSION_DATA
    records.move_call_log(data / "logs", job.folder)
    removal = asyncio.ensure_future(asyncio.to_thread(shutil.rmtree, data, True))
    if cleanups is None:
        await removal
    else:
        cleanups.append(removal)
    records.write_run(job.folder, question, result, events)
    # The harness's own time: all but opening, running and closing the session (model and sandbox time).
    result.wall_seconds = round(time.perf_counter() - started, 4)
    result.timing = {k: round(v, 4) for k, v in timing.items()}
    result.timing["harness"] = round(result.wall_seconds - sum(timing.values()), 4)
    records.write_result(job.folder, result)
    return result


async def run_eval(
    run: EvalRun,
    *,
    base: Config,
    parallel: int = 1,
    on_result: Callable[[QuestionResult], None] | None = None,
    on_resumed: Callable[[QuestionResult], None] | None = None,
) -> EvalRun:
    """Run every job that has no finished result in the output folder, ``parallel`` at a time."""
    if parallel < 1:
        raise UsageProblem("-j/--jobs must be at least 1")
    started = time.perf_counter()
    plan, jobs = run.plan, jobs_of(run.plan, run.dataset, run.out)
    pending = []
    for job in jobs:
        done = records.read_result(job.folder)
        if done is not None:
            run.results.append(done)
            run.resumed += 1
            if on_resumed:
                on_resumed(done)
        else:
            pending.append(job)
    recording = CassetteFile(Path(plan.cassette), fresh=not run.resumed) if plan.cassette_mode == "record" else None
    slot = asyncio.Semaphore(parallel)
    cleanups: list[asyncio.Future[None]] = []

    async def one(job: Job) -> None:
        await slot.acquire()
        held = True

        def release() -> None:
            nonlocal held
            if held:
                held = False
                slot.release()

        try:
            result = await run_question(job, plan, run.dataset, base, release, cleanups)
        finally:
            release()
        if recording is not None:
            recording.append(job.folder / "cassette.jsonl")
        run.results.append(result)
        if on_result:
            on_result(result)

    try:
        await asyncio.gather(*(one(job) for job in pending))
    finally:
        await asyncio.gather(*cleanups, return_exceptions=True)
    order = {(j.model, j.variant, j.question.id): n for n, j in enumerate(jobs)}
    run.results.sort(key=lambda r: order.get((r.model, r.variant, r.id), len(order)))
    run.seconds = time.perf_counter() - started
    return run
