"""From what the user asked for to an ``EvalRun``: a new eval, or one resumed from its output folder.

A new eval writes ``eval.json`` (the plan: files, the questions chosen, models, mode, timeout, cassette)
into the output folder before anything runs. ``--resume`` reads it back; whatever is named again on the
command line must agree with it, so a resumed eval cannot quietly mix two settings in one summary.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import atomic
from ..exceptions import UsageProblem
from . import dataset
from .runner import EvalPlan, EvalRun, check_mode
from .variants import parse_variants

PLAN = "eval.json"


@dataclass
class EvalArgs:
    """The command line of ``llm-agent eval``, as given."""

    questions: str = ""
    labels: str = ""
    tables: str = ""
    out: str = ""
    ids: list[str] = field(default_factory=list)
    level: str = ""
    limit: int = 0
    mode: str = "auto"
    models: list[str] = field(default_factory=list)
    timeout: float = 0.0
    replay: str = ""
    record: str = ""
    resume: bool = False
    #: ``--variant NAME:--Class.trait=value ...`` values, as given.
    variants: list[str] = field(default_factory=list)


def _absolute(path: str) -> str:
    return str(Path(path).expanduser().resolve()) if path else ""


def split_ids(values: list[str]) -> list[str]:
    """``--ids 3,5 --ids 7`` -> ``['3', '5', '7']``."""
    return [part.strip() for value in values for part in value.replace(" ", ",").split(",") if part.strip()]


def _new_plan(args: EvalArgs, default_model: str) -> tuple[EvalPlan, dataset.Dataset]:
    missing = [
        flag
        for flag, value in (("QUESTIONS.jsonl", args.questions), ("--labels", args.labels), ("--tables", args.tables))
        if not value
    ]
    if missing:
        raise UsageProblem(f"name {', '.join(missing)} (or --resume an earlier eval with --out DIR)")
    if args.replay and args.record:
        raise UsageProblem("choose one of --replay and --record")
    if args.replay and not Path(args.replay).expanduser().is_file():
        raise UsageProblem(f"cassette {args.replay} does not exist; record one first with --record")
    if args.timeout < 0:
        raise UsageProblem("--timeout must be 0 (no limit) or more seconds")
    models = list(dict.fromkeys(m.strip() for m in args.models if m.strip())) or [default_model]
    data = dataset.load(args.questions, args.labels, args.tables, ids=split_ids(args.ids), level=args.level, limit=args.limit)
    plan = EvalPlan(
        questions=_absolute(args.questions),
        labels=_absolute(args.labels),
        tables=str(data.tables),
        ids=[q.id for q in data.questions],
        models=models,
        mode=check_mode(args.mode),
        timeout=args.timeout,
        cassette_mode="replay" if args.replay else "record" if args.record else "live",
        cassette=_absolute(args.replay or args.record),
        variants=parse_variants(args.variants),
    )
    return plan, data


def _resumed_plan(args: EvalArgs, out: Path) -> tuple[EvalPlan, dataset.Dataset]:
    try:
        saved = EvalPlan.from_dict(json.loads((out / PLAN).read_text(encoding="utf-8")))
    except FileNotFoundError:
        raise UsageProblem(f"--resume: {out} holds no {PLAN}, so no eval was started there; drop --resume") from None
    except (OSError, ValueError, TypeError) as exc:
        raise UsageProblem(f"--resume: {out / PLAN} cannot be read ({exc}); start again in a new --out folder") from None
    given: dict[str, Any] = {
        "questions": _absolute(args.questions),
        "labels": _absolute(args.labels),
        "tables": _absolute(args.tables),
        "models": list(dict.fromkeys(args.models)),
        "cassette": _absolute(args.replay or args.record),
    }
    if args.mode != "auto":
        given["mode"] = args.mode
    if args.timeout:
        given["timeout"] = args.timeout
    conflicts = [
        f"{key} ({value} here, {getattr(saved, key)} in {PLAN})"
        for key, value in given.items()
        if value and value != getattr(saved, key)
    ]
    if args.variants and parse_variants(args.variants) != saved.variants:
        conflicts.append(f"--variant (the eval was started with {list(saved.variants) or 'none'})")
    if args.ids or args.level or args.limit:
        conflicts.append("--ids/--level/--limit (the questions were chosen when the eval started)")
    if conflicts:
        raise UsageProblem(
            "--resume continues the eval as it was started; these differ: "
            + "; ".join(conflicts)
            + ". Leave them out, or start a new eval in another --out folder"
        )
    if saved.cassette_mode == "replay" and not Path(saved.cassette).is_file():
        raise UsageProblem(f"--resume: the cassette {saved.cassette} this eval replays from is gone; put it back")
    data = dataset.load(saved.questions, saved.labels, saved.tables, ids=saved.ids)
    return saved, data


def prepare(args: EvalArgs, *, default_model: str) -> EvalRun:
    """Check the arguments and the files, and make (or find) the output folder."""
    if not args.out:
        raise UsageProblem("name the output folder with --out DIR")
    out = Path(args.out).expanduser().resolve()
    if args.resume:
        plan, data = _resumed_plan(args, out)
    else:
        if (out / PLAN).exists():
            raise UsageProblem(f"{out} already holds an eval; continue it with --resume, or choose another --out")
        plan, data = _new_plan(args, default_model)
        out.mkdir(parents=True, exist_ok=True)
        atomic.write_text(out / PLAN, json.dumps(plan.to_dict(), ensure_ascii=False, indent=1) + "\n", mode=0o666)
    return EvalRun(plan, data, out)
