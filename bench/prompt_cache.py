"""How much of each prompt a local model can take from its KV cache, before and after.

Ollama (llama.cpp) keeps the KV cache of the last prompt it processed for a model; a new
prompt reuses it up to the first token that differs, and everything after is computed
again. So what counts is the share of each call's prompt that is a prefix of the
immediately previous call to the same model, and how many prompt tokens per question
are left to compute.

The standard scenarios (tests/scenarios: CSV ReAct, retry with rethink, a plan of two
steps) run through ``AgentSession`` against the scripted server, once with this tree
and once with a baseline commit (extracted with ``git archive``), in one run. Prompts
are compared as the chat template lays them out (``role: content``, in order); tokens
are characters / CHARS_PER_TOKEN. Questions run one after another on one server, after a
warm-up question (a chat answer, not counted), so each question's first call meets the
cache the previous question left, as in a notebook where requests follow each other.

    python bench/prompt_cache.py [--baseline COMMIT]

Targets (issue 8): at least 70% of prompt tokens reusable from the previous call, and
uncached prompt tokens per question at most half of the baseline's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
#: The last commit whose prompts put the clock and the purpose's instructions first.
BASELINE = "5641bae"
TARGET_SHARE = 0.70
TARGET_UNCACHED_RATIO = 0.5
SCENARIOS = {
    "csv_react": ("react_csv", "What is the mean price in sales.csv?", "auto", True),
    "retry_rethink": ("retry_rethink", "What is the first score?", "react", False),
    "plan_two_steps": ("plan_two_steps", "Load sales.csv and total the price by region.", "auto", True),
}


# --- measuring one tree (runs with that tree first on sys.path) ---------------------------------
async def _run_scenario(tree: Path, script: str, request: str, mode: str, attach: bool, work: Path) -> list[dict]:
    from traitlets.config import Config

    from llm_agent_magic.agents.session import AgentSession
    from llm_agent_magic.testing.fake_ollama import FakeOllama

    csv = work / "sales.csv"
    csv.write_text("region,price\nnorth,10\nsouth,30\n")
    with FakeOllama(tree / "tests" / "scenarios" / f"{script}.json") as server:
        config = Config()
        config.LLMConfig.host = server.url
        config.PathsConfig.data_root = str(work / f"data-{script}")
        session = AgentSession.open(f"bench-{script}", config=config)
        try:
            await session.start()
            files = [str(csv)] if attach else []
            with_context = _request(request, mode, files, work)
            runs = session.run(with_context) if with_context is not None else session.run(request, mode=mode, files=files)
            async for _ in runs:
                pass
        finally:
            await session.close()
        return [{"model": r.model, "purpose": r.purpose, "text": r.text} for r in server.requests if r.path == "/api/chat"]


def _request(text: str, mode: str, files: list[str], work: Path) -> object | None:
    """With ``BENCH_CONTEXT=1``, in a tree that gathers the notebook's context (issue 22), the request carries
    what a %%agent cell sends: a notebook of 20 cells with outputs and an error, a DataFrame, and the folder's
    files. None: the request as text (the baseline's way; without a context the trees compare like for like)."""
    try:
        from llm_agent_magic.notebook_context import ContextCell, ContextVariable, NotebookContext
        from llm_agent_magic.run_requests import RunRequest
    except ImportError:  # the baseline tree: the request as text
        return None
    if os.environ.get("BENCH_CONTEXT", "0") != "1":
        return None
    cells = [
        ContextCell(f"step{i} = prepare(step{i - 1})\nprint(step{i}.describe())", outputs=f"{i} rows\n" * 5) for i in range(19)
    ]
    cells.append(ContextCell("sales.groupby('regoin').sum()", error="KeyError: 'regoin'"))
    variables = [ContextVariable("sales", "pandas.DataFrame", "(2, 2)", [["region", "object"], ["price", "int64"]])]
    return RunRequest(
        text, mode=mode, files=files, folder=str(work), context=NotebookContext(cells, active=19, variables=variables)
    )


WARM_UP = ("route_chat", "What is a p-value?", "chat", False)


def measure(tree: Path) -> dict[str, list[dict]]:
    with tempfile.TemporaryDirectory() as tmp:
        runs = {"warm-up": asyncio.run(_run_scenario(tree, *WARM_UP, Path(tmp)))}
        runs.update({name: asyncio.run(_run_scenario(tree, *spec, Path(tmp))) for name, spec in SCENARIOS.items()})
        return runs


# --- comparing ----------------------------------------------------------------------------------
def _common_prefix(a: str, b: str) -> int:
    n = min(len(a), len(b))
    lo, hi = 0, n
    while lo < hi:  # binary search on prefix equality: prompts are long, comparisons are cheap
        mid = (lo + hi + 1) // 2
        if a[:mid] == b[:mid]:
            lo = mid
        else:
            hi = mid - 1
    return lo


def score(calls: list[dict], chars_per_token: float, last: dict[str, str]) -> dict[str, Any]:
    """Prompt tokens of ``calls`` and how many a model's cache holds; ``last``: model -> its last prompt."""
    total = reused = 0.0
    for call in calls:
        text = call["text"]
        prefix = _common_prefix(last.get(call["model"], ""), text)
        total += len(text) / chars_per_token
        reused += prefix / chars_per_token
        last[call["model"]] = text
    return {
        "calls": len(calls),
        "prompt_tokens": total,
        "reused": reused,
        "uncached": total - reused,
        "share": reused / total if total else 0.0,
    }


def _tree_of(commit: str, into: Path) -> Path:
    archive = into / "baseline.tar"
    subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", "-o", str(archive), commit], check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(into / "tree", filter="data")
    return into / "tree"


def _measure_in_subprocess(tree: Path) -> dict[str, list[dict]]:
    env = {**os.environ, "PYTHONPATH": str(tree), "LLM_AGENT_NOW": "2026-11-28T09:15:00+00:00", "TZ": "UTC"}
    out = subprocess.run([sys.executable, __file__, "--measure", str(tree)], env=env, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"measuring {tree} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default=BASELINE, help="commit to compare with (default: %(default)s)")
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(Path(args.measure))))
        return
    sys.path.insert(0, str(ROOT))
    from llm_agent_magic.text import CHARS_PER_TOKEN

    with tempfile.TemporaryDirectory() as tmp:
        before = _measure_in_subprocess(_tree_of(args.baseline, Path(tmp)))
    after = _measure_in_subprocess(ROOT)
    print(f"prompt prefix reuse: baseline {args.baseline} vs this tree (tokens = chars / {CHARS_PER_TOKEN})")
    print(f"{'scenario':<16}{'calls':>12}{'prompt tokens':>20}{'reusable':>18}{'uncached tokens':>22}{'ratio':>8}")
    worst_share, worst_ratio = 1.0, 0.0
    cache_before: dict[str, str] = {}
    cache_after: dict[str, str] = {}
    score(before["warm-up"], CHARS_PER_TOKEN, cache_before)
    score(after["warm-up"], CHARS_PER_TOKEN, cache_after)
    for name in SCENARIOS:
        b, a = score(before[name], CHARS_PER_TOKEN, cache_before), score(after[name], CHARS_PER_TOKEN, cache_after)
        ratio = a["uncached"] / b["uncached"] if b["uncached"] else 0.0
        worst_share, worst_ratio = min(worst_share, a["share"]), max(worst_ratio, ratio)
        print(
            f"{name:<16}{b['calls']:>5} -> {a['calls']:<5}{b['prompt_tokens']:>8.0f} -> {a['prompt_tokens']:<8.0f}"
            f"{b['share']:>7.0%} -> {a['share']:<7.0%}{b['uncached']:>9.0f} -> {a['uncached']:<9.0f}{ratio:>7.2f}x"
        )
    share_ok, ratio_ok = worst_share >= TARGET_SHARE, worst_ratio <= TARGET_UNCACHED_RATIO
    print(
        f"reusable from the previous call (worst scenario): {worst_share:.0%} (target >= {TARGET_SHARE:.0%}) "
        f"{'ok' if share_ok else 'MISSED'}"
    )
    print(
        f"uncached prompt tokens per question, after/before (worst scenario): {worst_ratio:.2f}x "
        f"(target <= {TARGET_UNCACHED_RATIO:.2f}x) {'ok' if ratio_ok else 'MISSED'}"
    )


if __name__ == "__main__":
    main()
