"""``llm-agent eval``: measure the agent on InfiAgent-DABench questions; parse, show progress, delegate.

The harness is ``llm_agent_magic.evaluation``; this module reads the command line, draws the progress bar
(questions done, running accuracy, time left) and prints the summary.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from traitlets import Bool, Float, Int, List, Unicode

from ..exceptions import UsageProblem
from .app import LLMAgentApp

USAGE = (
    "usage: llm-agent eval QUESTIONS.jsonl --labels LABELS.jsonl --tables DIR [--limit N] [--ids 1,2,...] "
    "[--level easy|medium|hard] [--mode auto|react|plan] [--model NAME ...] [-j N] [--out DIR] "
    "[--variant NAME:--Class.trait=value ... (two or more)] [--replay CASSETTE | --record CASSETTE] [--timeout S] "
    "[--resume]"
)


class ProgressBar:
    """tqdm on stderr: questions done of all, the accuracy so far (all sub-answers right) and the time left."""

    def __init__(self, total: int) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=total, desc="llm-agent eval", unit="question", file=sys.stderr, dynamic_ncols=True, smoothing=0.1)
        self.done = self.right = self.failed = 0

    def count(self, result: Any) -> None:
        self.done += 1
        self.right += result.all_correct
        self.failed += result.status != "ok"

    def resumed(self, result: Any) -> None:
        """A result found in the output folder: counted, without making the time left look shorter."""
        self.count(result)
        self.bar.n += 1
        self._postfix()

    def update(self, result: Any) -> None:
        self.count(result)
        self._postfix()
        self.bar.update(1)

    def _postfix(self) -> None:
        self.bar.set_postfix_str(f"accuracy {self.right / self.done:.0%}, {self.failed} failed", refresh=False)

    def close(self) -> None:
        self.bar.close()


class EvalApp(LLMAgentApp):
    name = "llm-agent eval"
    description = "Measure how well the agent answers InfiAgent-DABench questions with a model (or several)."
    examples = """
    llm-agent eval da-dev-questions.jsonl --labels da-dev-labels.jsonl --tables da-dev-tables --out eval-qwen3
    llm-agent eval q.jsonl --labels l.jsonl --tables t --model qwen3:8b --model llama3.1:8b -j 2 --limit 20
    llm-agent eval q.jsonl --labels l.jsonl --tables t --ids 1,2,3 --LLMConfig.seed=7 \\
        --variant base: --variant review:--AgentConfig.review_before_run=True
    llm-agent eval --resume --out eval-qwen3
    """
    labels = Unicode("", help="DABench labels file (JSONL: id, common_answers).").tag(config=True)
    tables = Unicode("", help="Folder holding the questions' tables (file_name of each question).").tag(config=True)
    limit = Int(0, help="Run only the first N questions chosen (0: all).").tag(config=True)
    ids = List(Unicode(), help="Run only these question ids (comma-separated; may be given more than once).").tag(config=True)
    level = Unicode("", help="Run only questions of this level: easy, medium or hard.").tag(config=True)
    mode = Unicode("auto", help="How the agent answers: auto (its classifier decides), react or plan.").tag(config=True)
    models = List(
        Unicode(),
        help="Model to evaluate; give several (--model A --model B) for a side-by-side table. Default: LLMConfig.model.",
    ).tag(config=True)
    variants = List(
        Unicode(),
        help="Settings to compare: NAME:--AgentConfig.x=y ... (settings separated by spaces); "
        "give two or more, every question runs under each, side by side in the summary.",
    ).tag(config=True)
    jobs = Int(1, help="Questions run at once, each in its own sandbox kernel.").tag(config=True)
    out = Unicode("eval-results", help="Output folder: one folder per model and question, and the summary.").tag(config=True)
    replay = Unicode("", help="Answer every question from this cassette instead of the model.").tag(config=True)
    record = Unicode("", help="Record the model's answers to this cassette.").tag(config=True)
    timeout = Float(0.0, help="Seconds one question may take before it is stopped and counted as timed out (0: no limit).").tag(
        config=True
    )
    resume = Bool(False, help="Continue the eval in --out, running only the questions it has no result for.").tag(config=True)
    aliases = {
        **LLMAgentApp.aliases,
        "labels": "EvalApp.labels",
        "tables": "EvalApp.tables",
        "limit": "EvalApp.limit",
        "ids": "EvalApp.ids",
        "level": "EvalApp.level",
        "mode": "EvalApp.mode",
        "model": "EvalApp.models",
        ("j", "jobs"): "EvalApp.jobs",
        "out": "EvalApp.out",
        "replay": "EvalApp.replay",
        "record": "EvalApp.record",
        "timeout": "EvalApp.timeout",
        "variant": "EvalApp.variants",
    }
    flags = {"resume": ({"EvalApp": {"resume": True}}, "Continue the eval in --out where it stopped.")}

    def start(self) -> None:
        from ..evaluation import report
        from ..evaluation.prepare import EvalArgs, prepare
        from ..evaluation.runner import run_eval

        try:
            if len(self.extra_args) > 1:
                raise UsageProblem(
                    f"one questions file, not {len(self.extra_args)}: {' '.join(self.extra_args)} (give --ids as 1,2,3)"
                )
            if self.jobs < 1:
                raise UsageProblem("-j/--jobs must be at least 1")
            run = prepare(
                EvalArgs(
                    questions=self.extra_args[0] if self.extra_args else "",
                    labels=self.labels,
                    tables=self.tables,
                    out=self.out,
                    ids=list(self.ids),
                    level=self.level,
                    limit=self.limit,
                    mode=self.mode,
                    models=list(self.models),
                    timeout=self.timeout,
                    replay=self.replay,
                    record=self.record,
                    resume=self.resume,
                    variants=list(self.variants),
                ),
                default_model=self.llm_config.model,
            )
        except UsageProblem as exc:
            print(f"llm-agent eval: {exc}\n{USAGE}", file=sys.stderr)
            self.exit(2)
        total = len(run.dataset.questions) * len(run.plan.arms())
        bar = ProgressBar(total)
        try:
            asyncio.run(run_eval(run, base=self.cli_config, parallel=self.jobs, on_result=bar.update, on_resumed=bar.resumed))
        except KeyboardInterrupt:
            bar.close()
            print(f"llm-agent eval: interrupted; continue with: llm-agent eval --resume --out {run.out}", file=sys.stderr)
            self.exit(130)
        bar.close()
        summary = report.summarize(run)
        as_json, as_md = report.write(summary, run.out)
        print(report.markdown(summary))
        print(f"Summary: {as_md} and {as_json}; per question: {run.out}/<model>/<id>/", file=sys.stderr)
