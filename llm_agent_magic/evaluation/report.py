"""The summary of an eval: per model (and ``--variant``) the three DABench metrics (overall and by level), the
format miss rate (requested names absent from the answer), the runs that errored or timed out, and the cost
with the model calls per question; as JSON (``summary.json``) and markdown (``summary.md``), side by side."""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .. import atomic, volatile
from .records import QuestionResult
from .runner import EvalRun, arm_label
from .scoring import Score, metrics


def _median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else 0.0


def model_summary(results: Sequence[QuestionResult]) -> dict[str, Any]:
    scored = [(r.level, r.score if r.score is not None else Score({}, {}, {})) for r in results]
    m = metrics(scored)
    walls = [r.wall_seconds for r in results]
    calls = [r.cost.model_calls for r in results]
    # A requested name the answer does not carry at all (not a wrong value): the format was missed.
    requested = sum(len(s.expected) for _, s in scored)
    missed = sum(sum(name not in s.predicted for name in s.expected) for _, s in scored)
    return {
        **m.to_dict(),
        "format_miss": round(missed / requested, 4) if requested else 0.0,
        "runs": {status: sum(r.status == status for r in results) for status in ("ok", "error", "timeout")},
        "cost": {
            "model_calls": sum(calls),
            "model_calls_median": _median(calls),
            "model_calls_per_question": round(sum(calls) / len(calls), 2) if calls else 0.0,
            "prompt_tokens": sum(r.cost.prompt_tokens for r in results),
            "completion_tokens": sum(r.cost.completion_tokens for r in results),
            "model_seconds": round(sum(r.cost.model_seconds for r in results), 3),
            "wall_seconds_total": round(sum(walls), 3),
            "wall_seconds_median": round(_median(walls), 3),
            "harness_seconds_median": round(_median([r.timing.get("harness", 0.0) for r in results]), 4),
        },
        "failed": [{"id": r.id, "status": r.status, "error": r.error[:300]} for r in results if r.status != "ok"],
        "wrong": [r.id for r in results if r.status == "ok" and not r.all_correct],
    }


def summarize(run: EvalRun) -> dict[str, Any]:
    models = {
        arm_label(m, v): model_summary([r for r in run.results if r.model == m and r.variant == v]) for m, v in run.plan.arms()
    }
    return {
        "benchmark": "InfiAgent-DABench (closed-form scoring)",
        "date": volatile.now().isoformat(timespec="seconds"),
        "plan": run.plan.to_dict(),
        "questions": len(run.dataset.questions),
        "resumed": run.resumed,
        "elapsed_seconds": round(run.seconds, 3),
        "models": models,
    }


def _pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def markdown(summary: dict[str, Any]) -> str:
    """The summary as markdown: one column per model (and variant), the variants' settings below the table."""
    models: dict[str, dict[str, Any]] = summary["models"]
    names = list(models)
    head = "| | " + " | ".join(f"`{n}`" for n in names) + " |\n|---|" + "---|" * len(names) + "\n"

    def row(label: str, cell: Any) -> str:
        return f"| {label} | " + " | ".join(str(cell(models[n])) for n in names) + " |\n"

    table = head
    table += row("ABQ (all sub-answers right)", lambda s: _pct(s["abq"]))
    table += row("PSAQ (share right, per question)", lambda s: _pct(s["psaq"]))
    table += row("UASQ (all sub-answers)", lambda s: _pct(s["uasq"]))
    table += row("format miss (requested names absent from the answer)", lambda s: _pct(s.get("format_miss", 0.0)))
    levels = sorted(
        {lv for s in models.values() for lv in s.get("by_level", {})},
        key=lambda lv: ("easy", "medium", "hard").index(lv) if lv in ("easy", "medium", "hard") else 9,
    )
    for lv in levels:
        table += row(
            f"ABQ, {lv}",
            lambda s, lv=lv: (
                f"{_pct(s['by_level'][lv]['abq'])} of {s['by_level'][lv]['questions']}" if lv in s.get("by_level", {}) else "-"
            ),
        )
    table += row("questions", lambda s: s["questions"])
    table += row("runs ok / error / timeout", lambda s: "{ok} / {error} / {timeout}".format(**s["runs"]))
    table += row(
        "model calls answered (median per question)",
        lambda s: f"{s['cost']['model_calls']} ({s['cost']['model_calls_median']:g})",
    )
    table += row("model calls per question", lambda s: f"{s['cost'].get('model_calls_per_question', 0.0):g}")
    table += row("prompt + completion tokens", lambda s: f"{s['cost']['prompt_tokens']:,} + {s['cost']['completion_tokens']:,}")
    table += row("wall time per question, median", lambda s: f"{s['cost']['wall_seconds_median']:.1f} s")
    table += row("wall time, total", lambda s: f"{s['cost']['wall_seconds_total']:.1f} s")
    lines = [
        f"# {summary['benchmark']}",
        "",
        f"{summary['questions']} questions, {summary['date']}, mode {summary['plan']['mode']}"
        + (f", {summary['resumed']} results resumed" if summary["resumed"] else "")
        + f", {summary['elapsed_seconds']:.1f} s elapsed.",
        "",
        table,
    ]
    for name, settings in summary["plan"].get("variants", {}).items():
        lines.append(f"Variant `{name}`: {' '.join(settings) or '(the configuration as it is)'}\n")
    for name, s in models.items():
        if s["failed"]:
            lines.append(
                f"`{name}`: runs that did not finish well: "
                + "; ".join(f"{f['id']} ({f['status']}: {f['error'][:120]})" for f in s["failed"])
                + "\n"
            )
        if s["wrong"]:
            lines.append(f"`{name}`: answered wrong: {', '.join(s['wrong'])}\n")
    return "\n".join(lines)


def write(summary: dict[str, Any], out: Path) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    as_json, as_md = out / "summary.json", out / "summary.md"
    atomic.write_text(as_json, json.dumps(summary, ensure_ascii=False, indent=1) + "\n", mode=0o666)
    atomic.write_text(as_md, markdown(summary), mode=0o666)
    return as_json, as_md
