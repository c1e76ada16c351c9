"""``llm-agent eval``: the harness's own time per question, and questions in parallel.

Eight DABench-format questions on one small CSV, each a ReAct run against the scripted model answering every
call after 500 ms, through ``llm-agent eval`` as a user runs it, with ``-j 1`` and ``-j 4``. Each setting runs
twice, alternating, and the better wall time counts (two shared cores make single runs noisy).

1. Harness time per question: each question's wall time less the time spent opening its session (the
   sandbox starting), running it (model and sandbox) and closing it, as ``result.json`` records it; the
   median over the ``-j 1`` questions. Target: under 50 ms.
2. The ``-j 4`` wall time over the ``-j 1`` one. Target: at most 0.45x.
3. Model calls per one-table question (median, from ``result.json``): a table attached and a question go
   to ReAct without a classifier call, the cell is not reviewed before it runs and its output, which
   prints the requested value, needs no adequacy check: react, code, react (finish), answer. Target: at
   most 4 (issue 25; it was 7).

    python bench/eval_overhead.py [--questions 8] [--jobs 4] [--delay-ms 500] [--repeat 2]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from llm_agent_magic.testing.fake_ollama import FakeOllama

HARNESS_TARGET_MS = 50.0
CALLS_TARGET = 4
PARALLEL_TARGET = 0.45


def script(delay_ms: float) -> dict:
    rules = [
        {"purpose": "classify", "reply": {"mode": "react", "reason": "needs the data"}},  # not asked any more
        {
            "purpose": "react",
            "match_last": "Observation from python_coder",
            "reply": {"thought": "Done.", "action": "finish", "action_input": "mean price is 20.0"},
        },
        {"purpose": "react", "reply": {"thought": "Compute.", "action": "python_coder", "action_input": "mean price"}},
        {
            "purpose": "code",
            "reply": "```python\nimport pandas as pd\nsales = pd.read_csv('sales data.csv')\n"
            "print(f\"@mean_price[{sales['price'].mean():.2f}]\")\n```",
        },
        {"purpose": "verify", "reply": {"answers_question": True, "issues": ""}},
        {"purpose": "answer", "reply": "The mean price is @mean_price[20.00]."},
    ]
    return {"rules": [dict(r, delay_ms=delay_ms) for r in rules]}


def dataset(folder: Path, n: int) -> None:
    (folder / "tables").mkdir()
    (folder / "tables" / "sales data.csv").write_text("region,price\nnorth,10\nsouth,30\n")
    with open(folder / "questions.jsonl", "w") as q, open(folder / "labels.jsonl", "w") as labels:
        for i in range(n):
            q.write(
                json.dumps(
                    {
                        "id": i,
                        "question": f"What is the mean price? (question {i})",
                        "constraints": "",
                        "format": "@mean_price[value] rounded to two decimals",
                        "file_name": "sales data.csv",
                        "level": "easy",
                    }
                )
                + "\n"
            )
            labels.write(json.dumps({"id": i, "common_answers": [["mean_price", "20.00"]]}) + "\n")


def eval_wall_time(folder: Path, jobs: int, host: str, attempt: int) -> tuple[float, list[dict]]:
    out = folder / f"out-j{jobs}-{attempt}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLM_AGENT_")}
    env.update(OLLAMA_HOST=host)
    started = time.perf_counter()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "llm_agent_magic.cli",
            "eval",
            "questions.jsonl",
            "--labels",
            "labels.jsonl",
            "--tables",
            "tables",
            "-j",
            str(jobs),
            "--out",
            str(out),
        ],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"llm-agent eval -j {jobs} failed:\n{done.stderr[-3000:]}")
    results = [json.loads(p.read_text()) for p in sorted(out.glob("*/*/result.json"))]
    wrong = [r["id"] for r in results if r["status"] != "ok" or not r["score"]["all_correct"]]
    if wrong:
        raise SystemExit(f"llm-agent eval -j {jobs}: questions {wrong} did not come out right; see {out}")
    return elapsed, results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=8)
    parser.add_argument("--jobs", type=int, default=4)
    parser.add_argument("--delay-ms", type=float, default=500.0)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, FakeOllama(script(args.delay_ms)) as server:
        folder = Path(tmp)
        dataset(folder, args.questions)
        serial: list[float] = []
        parallel: list[float] = []
        serial_results: list[dict] = []
        for attempt in range(args.repeat):
            wall, results = eval_wall_time(folder, 1, server.url, attempt)
            serial.append(wall)
            serial_results += results
            parallel.append(eval_wall_time(folder, args.jobs, server.url, attempt)[0])
        calls = len(server.requests) // (2 * args.repeat * args.questions)

    def median(key: str) -> float:
        return statistics.median(r["timing"][key] for r in serial_results)

    harness_ms = 1000 * median("harness")
    model = statistics.median(r["cost"]["model_seconds"] for r in serial_results)
    wall = statistics.median(r["wall_seconds"] for r in serial_results)
    print(f"llm-agent eval, {args.questions} questions, {calls} model calls each ({args.delay_ms:g} ms a call)")
    print(
        f"  per question at -j 1 (median): open {median('open'):.2f} s, run {median('run'):.2f} s "
        f"(model {model:.2f} s), close {median('close'):.2f} s, wall {wall:.2f} s"
    )
    print(
        f"  harness time per question: {harness_ms:.1f} ms (target < {HARNESS_TARGET_MS:g} ms) "
        f"{'PASS' if harness_ms < HARNESS_TARGET_MS else 'MISS'}"
    )
    ratio = min(parallel) / min(serial)
    print(f"  -j 1: {' / '.join(f'{t:.1f}' for t in serial)} s   -j {args.jobs}: {' / '.join(f'{t:.1f}' for t in parallel)} s")
    print(
        f"  -j {args.jobs} / -j 1 wall time: {ratio:.2f}x (target <= {PARALLEL_TARGET}x) "
        f"{'PASS' if ratio <= PARALLEL_TARGET else 'MISS'}"
    )
    per_question = statistics.median(r["cost"]["model_calls"] for r in serial_results)
    print(
        f"  model calls per one-table question (median): {per_question:g} (target <= {CALLS_TARGET}) "
        f"{'PASS' if per_question <= CALLS_TARGET else 'MISS'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
