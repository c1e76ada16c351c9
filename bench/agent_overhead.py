"""The agent's own time per ReAct step, separated from model time and sandbox time.

A ReAct run of N python_coder steps (each: a react call, code generation, review,
execution of a trivial cell, an adequacy check) against the scripted server in its
own process with zero delay, in a warm sandbox. Model time is the sum of the model
calls as the agent saw them; sandbox time is the wall time of every sandbox call;
the rest is the agent: prompts, parsing, events, the store.

Then a standard CSV scenario, and the prompt size in tokens for each purpose.

    python bench/agent_overhead.py [--steps 20] [--runs 3]

Target (issue 4): under 10 ms of agent overhead per ReAct step.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from llm_overhead import start_server

from llm_agent_magic.agents.session import AgentSession
from llm_agent_magic.config import AgentConfig, LLMConfig, PathsConfig
from llm_agent_magic.events import Usage
from llm_agent_magic.llm import LLMClient
from llm_agent_magic.sandbox import SandboxKernel
from llm_agent_magic.store import ConversationStore
from llm_agent_magic.text import CHARS_PER_TOKEN

TARGET_MS = 10.0
SCENARIOS = Path(__file__).resolve().parents[1] / "tests" / "scenarios"


def steps_script(steps: int) -> dict[str, Any]:
    react = {"thought": "again", "action": "python_coder", "action_input": "print one"}
    return {
        "rules": [
            {"purpose": "react", "times": steps, "reply": react},
            {"purpose": "react", "reply": {"thought": "done", "action": "finish", "action_input": "done"}},
            {"purpose": "code", "reply": "```python\nx = 1\nprint(x)\n```"},
            {"purpose": "verify", "reply": {"answers_question": True, "issues": ""}},
            {"purpose": "answer", "reply": "done"},
        ]
    }


class TimedSandbox:
    """The real sandbox, with the wall time of every call the agent makes to it added up."""

    def __init__(self, inner: SandboxKernel):
        self._inner = inner
        self.seconds = 0.0

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if not name.startswith("async_"):
            return attr

        async def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return await attr(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - start

        return timed


async def run_once(url: str, root: Path, kernel: SandboxKernel, request: str, files: list[str]) -> dict[str, Any]:
    paths = PathsConfig(data_root=str(root))
    sandbox = TimedSandbox(kernel)
    session = AgentSession(
        f"bench-{time.monotonic_ns()}",
        llm=LLMClient(LLMConfig(host=url), paths=paths),
        store=ConversationStore(root / "store.sqlite"),
        sandbox=sandbox,  # type: ignore[arg-type]
        agent_config=AgentConfig(max_react_iterations=1000),
    )
    model = 0.0
    per_purpose: dict[str, list[int]] = defaultdict(list)
    steps = 0
    start = time.perf_counter()
    async for event in session.run(request, mode="react", files=files):
        if isinstance(event, Usage):
            model += event.duration
            per_purpose[event.purpose].append(event.prompt_tokens)
        steps += event.type == "thought"
        if event.type == "run_finished" and event.status != "ok":
            raise SystemExit(f"the benchmark run failed: {event}")
    total = time.perf_counter() - start
    await session.llm.aclose()
    session.store.close()
    return {"total": total, "model": model, "sandbox": sandbox.seconds, "steps": steps, "tokens": per_purpose}


async def main_async(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        script = root / "steps.json"
        script.write_text(json.dumps(steps_script(args.steps)))
        runs = []
        with SandboxKernel("bench", paths=PathsConfig(data_root=str(root))) as kernel:
            await kernel.async_execute("pass")  # warm
            for _ in range(args.runs):  # a fresh server per run: its rule counters start again
                proc, url = start_server(script)
                try:
                    runs.append(await run_once(url, root, kernel, "print one, many times", []))
                finally:
                    proc.terminate()
            csv = root / "sales.csv"
            csv.write_text("region,price\nnorth,10\nsouth,30\n")
            proc, url = start_server(SCENARIOS / "react_csv.json")
            try:
                standard = await run_once(url, root, kernel, "What is the mean price in sales.csv?", [str(csv)])
            finally:
                proc.terminate()

    print(f"Agent overhead per ReAct step ({args.steps} python_coder steps a run, {args.runs} runs, warm sandbox)")
    per_step = []
    for r in runs:
        agent = r["total"] - r["model"] - r["sandbox"]
        per_step.append(agent / r["steps"] * 1000)
        print(
            f"  run: {r['steps']} steps, total {r['total'] * 1000:7.1f} ms = model {r['model'] * 1000:7.1f} ms"
            f" + sandbox {r['sandbox'] * 1000:7.1f} ms + agent {agent * 1000:6.1f} ms"
        )
    median = statistics.median(per_step)
    model_step = statistics.median(r["model"] / r["steps"] * 1000 for r in runs)
    sandbox_step = statistics.median(r["sandbox"] / r["steps"] * 1000 for r in runs)
    verdict = "PASS" if median < TARGET_MS else "MISS"
    print(
        f"  per step: agent {median:.2f} ms (target < {TARGET_MS:.0f} ms) {verdict}; "
        f"model {model_step:.2f} ms; sandbox {sandbox_step:.2f} ms; agent/(model+sandbox) = "
        f"{median / (model_step + sandbox_step):.3f}"
    )
    print("\nPrompt size per purpose, standard CSV scenario (tests/scenarios/react_csv.json)")
    print(f"  {'purpose':<10} {'calls':>5} {'tokens (server count)':>22}")
    for purpose, tokens in sorted(standard["tokens"].items()):
        print(f"  {purpose:<10} {len(tokens):>5} {' + '.join(str(t) for t in tokens):>22}")
    print(f"  (the scripted server counts words; real tokenizers give roughly 1.3x that, ~{CHARS_PER_TOKEN:g} chars/token)")
    return 0 if median < TARGET_MS else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--runs", type=int, default=3)
    return asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
