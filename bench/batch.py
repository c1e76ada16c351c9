"""Batch runs in parallel, and how soon a streamed token reaches the screen.

1. Eight notebooks, each one %%agent cell that asks a question of a CSV (react, code, react, answer:
   four model calls; seven before issue 25), through ``llm-agent run`` with ``-j 1`` and ``-j 4``,
   against the scripted model answering every call after 500 ms. Each setting runs twice,
   alternating, and the better time counts (two shared cores make single runs noisy).
   Target: the ``-j 4`` wall time at most 0.45x the ``-j 1`` one.
2. In one kernel, ``%%agent --mode chat`` cells whose answer streams: the time from the cell's
   start to the iopub display message carrying the first token (as a client sees it), against
   the time the scripted server wrote that token. Target: under 50 ms added (median).

    python bench/batch.py [--notebooks 8] [--jobs 4] [--delay-ms 500] [--repeat 2] [--latency-runs 10]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

from llm_agent_magic.testing import fake_ollama
from llm_agent_magic.testing.fake_ollama import FakeOllama

PARALLEL_TARGET = 0.45
LATENCY_TARGET_MS = 50.0
FIRST = "Firsttoken"
CSV = "region,price\nnorth,10\nsouth,30\n"


def csv_script(delay_ms: float) -> dict:
    rules = [
        {"purpose": "classify", "reply": {"mode": "react", "reason": "needs the data"}},
        {
            "purpose": "react",
            "match": "Observation from python_coder",
            "reply": {"thought": "Done.", "action": "finish", "action_input": "mean price is 20.0"},
        },
        {"purpose": "react", "reply": {"thought": "Compute.", "action": "python_coder", "action_input": "mean price"}},
        {
            "purpose": "code",
            "reply": "```python\nimport pandas as pd\nsales = pd.read_csv('sales.csv')\n"
            "print('mean price:', sales['price'].mean())\n```",
        },
        {"purpose": "verify", "reply": {"answers_question": True, "issues": ""}},
        {"purpose": "answer", "reply": "The mean price is **20.0**."},
    ]
    return {"rules": [dict(r, delay_ms=delay_ms) for r in rules]}


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLM_AGENT_") and k != "JPY_SESSION_NAME"}
    env.update(extra)
    return env


def batch_wall_time(folder: Path, notebooks: list[str], jobs: int, host: str) -> float:
    out = folder / f"out-j{jobs}"
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "llm_agent_magic.cli", "run", *notebooks, "-j", str(jobs), "--output-dir", str(out)],
        cwd=folder,
        env=clean_env(OLLAMA_HOST=host, LLM_AGENT_DATA_ROOT=str(folder / f".llm_agent-j{jobs}")),
        capture_output=True,
        text=True,
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"llm-agent run -j {jobs} failed:\n{done.stderr[-3000:]}")
    return elapsed


def parallel_figure(args: argparse.Namespace) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp, FakeOllama(csv_script(args.delay_ms)) as server:
        folder = Path(tmp)
        (folder / "sales.csv").write_text(CSV)
        names = []
        for i in range(args.notebooks):
            nb = nbformat.v4.new_notebook()
            nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
            nb.cells = [
                nbformat.v4.new_code_cell("%load_ext llm_agent_magic"),
                nbformat.v4.new_code_cell(f"%%agent --files sales.csv\nWhat is the mean price? (notebook {i})"),
            ]
            nbformat.write(nb, folder / f"nb{i}.ipynb")
            names.append(f"nb{i}.ipynb")
        serial, parallel = [], []
        for _ in range(args.repeat):
            serial.append(batch_wall_time(folder, names, 1, server.url))
            parallel.append(batch_wall_time(folder, names, args.jobs, server.url))
        calls = len(server.requests) // (2 * args.repeat)
    print(
        f"  -j 1: {' / '.join(f'{t:.1f}' for t in serial)} s   -j {args.jobs}: "
        f"{' / '.join(f'{t:.1f}' for t in parallel)} s   ({calls} model calls a run, {args.delay_ms:g} ms each)"
    )
    return min(serial), min(parallel)


class FirstWrite:
    """Records when the scripted server writes the first streamed chunk holding ``FIRST`` (a measurement probe)."""

    def __init__(self) -> None:
        self.at: float | None = None
        original = fake_ollama._Handler._write_chunk
        probe = self

        def write_chunk(handler: object, data: bytes) -> None:
            original(handler, data)
            if probe.at is None and FIRST.encode() in data:
                probe.at = time.perf_counter()

        fake_ollama._Handler._write_chunk = write_chunk  # type: ignore[method-assign]


def latency_figure(args: argparse.Namespace) -> list[float]:
    from jupyter_client.manager import start_new_kernel

    answer = f"{FIRST} " + "and then the rest of a streamed answer, word by word. " * 4
    script = {"rules": [{"purpose": "answer", "reply": answer, "token_delay_ms": 20}]}
    probe = FirstWrite()
    added: list[float] = []
    to_screen: list[float] = []
    with tempfile.TemporaryDirectory() as tmp, FakeOllama(script) as server:
        km, kc = start_new_kernel(cwd=tmp, env=clean_env(OLLAMA_HOST=server.url, LLM_AGENT_DATA_ROOT=f"{tmp}/.llm_agent"))
        try:

            def run(code: str) -> tuple[float, float | None]:
                probe.at = None
                started = time.perf_counter()
                msg_id = kc.execute(code)
                seen = None
                while True:
                    msg = kc.get_iopub_msg(timeout=120)
                    if msg["parent_header"].get("msg_id") != msg_id:
                        continue
                    now = time.perf_counter()
                    kind, content = msg["msg_type"], msg["content"]
                    if (
                        seen is None
                        and kind in ("display_data", "update_display_data")
                        and FIRST in content["data"].get("text/plain", "")
                    ):
                        seen = now
                    if kind == "status" and content["execution_state"] == "idle":
                        return started, seen

            run("%load_ext llm_agent_magic")
            run("%%agent --mode chat\nwarm up")  # the session opens and its sandbox starts here
            for i in range(args.latency_runs):
                started, seen = run(f"%%agent --mode chat\nStream an answer, please ({i}).")
                if seen is None or probe.at is None:
                    raise SystemExit("the first token never reached the screen")
                to_screen.append((seen - started) * 1000)
                added.append((seen - probe.at) * 1000)
        finally:
            kc.stop_channels()
            km.shutdown_kernel(now=False)
    print(
        f"  cell start -> first token on screen: median {statistics.median(to_screen):.1f} ms "
        f"(model's first token {statistics.median(to_screen) - statistics.median(added):.1f} ms after the start)"
    )
    return added


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--notebooks", type=int, default=8)
    parser.add_argument("--jobs", type=int, default=4)
    parser.add_argument("--delay-ms", type=float, default=500)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--latency-runs", type=int, default=10)
    args = parser.parse_args()

    print(f"Batch: {args.notebooks} notebooks, one %%agent CSV question each, scripted model {args.delay_ms:g} ms a call")
    serial, parallel = parallel_figure(args)
    ratio = parallel / serial
    print(
        f"  -j {args.jobs} / -j 1 wall time (best of {args.repeat}): {ratio:.2f}x (target <= {PARALLEL_TARGET}x)  "
        f"{'PASS' if ratio <= PARALLEL_TARGET else 'MISS'}"
    )

    print(f"\nStreaming: first token on screen vs the model's first token, {args.latency_runs} runs, warm session")
    added = latency_figure(args)
    median = statistics.median(added)
    print(
        f"  added latency: median {median:.1f} ms, max {max(added):.1f} ms (target < {LATENCY_TARGET_MS:g} ms)  "
        f"{'PASS' if median < LATENCY_TARGET_MS else 'MISS'}"
    )


if __name__ == "__main__":
    main()
