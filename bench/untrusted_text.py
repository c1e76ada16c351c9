"""How the handling of untrusted text grows with crafted input (figures measured in one run).

1. ``redact`` and the function that renders the model's markdown (``render_model_markdown`` below, one line
   to repoint) on crafted inputs (``'a-' * n + ' ://@'``, private-key headers without an end, runs of
   backticks, ...) and on plain text of the same size, at 100, 200, 400 and 800 KB: the time at each size and
   the ratio time(2n) / time(n), each time the best of a few calls. Linear is about 2 (target <= 3, held only
   where time(n) > 10 ms: below that the neighbours' noise decides); quadratic is 4. A case that takes longer
   than ``BUDGET_S`` at one size is not run at the next (it is printed as stopped, a MISS).
2. The server's ``GET /llm-agent/api/status`` while a run processes a 1 MB hostile output: a real Jupyter
   server with the extension and the scripted Ollama in processes of their own (as ``bench/server.py``), a
   ReAct run whose sandbox code prints ``'a-' * 500000 + ' ://@'`` (the redactor's path), then one that also
   shows 200 KB of fence openings as markdown (the path of ``safe_text.render_markdown``, which renders sandbox
   markdown too); a thread of this process asks for the status back to back meanwhile. Target: p99 < 100 ms; the idle
   p99 (the same requests, no run: each runs the doctor's checks) and the server's event-loop lag are printed
   beside it.

    python bench/untrusted_text.py [--sizes 100,200,400,800] [--skip-server | --only-server]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path

import tornado.httpclient
import tornado.websocket

sys.path.insert(0, str(Path(__file__).parent))
from server import TOKEN, free_port, lag, pct, stop, wait_for

from llm_agent_magic.redaction import redact
from llm_agent_magic.safe_text import render_markdown

HERE = Path(__file__).resolve().parent
BUDGET_S = 5.0
LINEAR_RATIO = 3.0
#: A ratio is held against the target only when time(n) is above this: shorter times are the neighbours' noise.
JUDGED_ABOVE_S = 0.01
STATUS_P99_MS = 100.0


def render_model_markdown(text: str) -> str:
    """What turns the model's markdown into what a notebook shows (the one line to repoint)."""
    return render_markdown(text)


def crafted(n: int) -> dict[str, str]:
    """Inputs of about ``n`` characters built to make a backtracking pattern slow, and plain text."""

    def fill(unit: str, tail: str = "") -> str:
        return unit * max(1, (n - len(tail)) // len(unit)) + tail

    return {
        "plain text": fill("The quick brown fox jumps over the lazy dog. "),
        "'a-'*n + ' ://@'": fill("a-", " ://@"),
        "private key headers": fill("-----BEGIN RSA PRIVATE KEY-----"),
        "runs of -----BEGIN": fill("-----BEGIN "),
        "long backtick run": fill("`"),
        "fence openings": fill("```\n"),
        "bearer / sk- prefixes": fill("Bearer sk-"),
        "password= fields": fill(";password="),
        "url user, no @": fill("postgres://user:pass "),
    }


def timed(fn: Callable[[str], object], text: str) -> float:
    """The best of a few calls (up to 0.3 s of them): on shared cores the others are the neighbours' time."""
    best, spent = float("inf"), 0.0
    for _ in range(5):
        start = time.perf_counter()
        fn(text)
        took = time.perf_counter() - start
        best, spent = min(best, took), spent + took
        if spent > 0.3:
            break
    return best


def growth(name: str, fn: Callable[[str], object], sizes: list[int]) -> bool:
    print(
        f"\n{name}: time (ms) at each size, the worst time(2n)/time(n) (linear ~2; target <= {LINEAR_RATIO:g}, "
        f"judged where time(n) > {JUDGED_ABOVE_S * 1000:g} ms) and the last time over plain text's"
    )
    print(f"  {'input':<24}" + "".join(f"{s // 1000:>8} KB" for s in sizes) + f"{'ratio':>8}{'/plain':>9}")
    ok = True
    plain: dict[int, float] = {}
    for case in crafted(sizes[0]):
        times: list[float] = []
        for size in sizes:
            if times and times[-1] > BUDGET_S:
                break
            text = crafted(size)[case]
            times.append(timed(fn, text))
        if case == "plain text":
            plain = dict(zip(sizes, times, strict=False))
        pairs = list(zip(times, times[1:], strict=False))
        ratios = [b / a for a, b in pairs]
        judged = [b / a for a, b in pairs if a > JUDGED_ABOVE_S]  # below it, noise decides
        worst = max(ratios, default=0.0)
        stopped = len(times) < len(sizes)
        case_ok = not stopped and max(judged, default=0.0) <= LINEAR_RATIO
        ok &= case_ok
        cells = "".join(f"{t * 1000:11.1f}" for t in times) + "".join(f"{'stopped':>11}" for _ in sizes[len(times) :])
        vs_plain = times[-1] / plain[sizes[len(times) - 1]] if plain.get(sizes[len(times) - 1]) else 0.0
        print(f"  {case:<24}{cells}{worst:8.2f}{vs_plain:9.1f}  {'PASS' if case_ok else 'MISS'}")
    return ok


# --- the server -------------------------------------------------------------------------------------------

PRINT = "print('a-' * 500000 + ' ://@')\n"  # 1 MB that made the redactor's URL pattern quadratic
# 200 KB of fence openings, shown as markdown; built without a fence, which would end the model's code block.
SHOW = "from IPython.display import Markdown, display\ndisplay(Markdown(('`' * 3 + '\\n') * 50000))\n"
# Each run: one python_coder step, then finish once it saw the output. A session whose requests say "show"
# gets the markdown display too.
SCRIPT = {
    "rules": [
        {
            "purpose": "react",
            "match_last": "Observation from python_coder",
            "reply": {"thought": "done", "action": "finish", "action_input": "printed"},
        },
        {"purpose": "react", "reply": {"thought": "print it", "action": "python_coder", "action_input": "print the text"}},
        {"purpose": "code", "match": "and show", "reply": f"```python\n{PRINT}{SHOW}```"},
        {"purpose": "code", "reply": f"```python\n{PRINT}```"},
        {"purpose": "verify", "reply": {"answers_question": True, "issues": ""}},
        {"purpose": "answer", "reply": "It printed the text."},
    ]
}
SCENARIOS = {
    "1 MB hostile print": ("bench/print.ipynb", "Print the text."),
    "the same and 200 KB of fence openings as markdown": ("bench/show.ipynb", "Print and show the text."),
}


def status_latencies(port: int, stop_when: threading.Event, until: float) -> list[float]:
    """``GET /status`` back to back until ``stop_when`` is set (or ``until``), each latency in ms."""
    url = f"http://127.0.0.1:{port}/llm-agent/api/status"
    request = urllib.request.Request(url, headers={"Authorization": f"token {TOKEN}"})
    found: list[float] = []
    while not stop_when.is_set() and time.monotonic() < until:
        start = time.perf_counter()
        with urllib.request.urlopen(request, timeout=120) as response:
            response.read()
        found.append((time.perf_counter() - start) * 1000)
    return found


async def hostile_run(port: int, session: str, request: str) -> dict[str, float]:
    """A ReAct run over the session's WebSocket; returns how long it took and how much output came back."""
    url = f"ws://127.0.0.1:{port}/llm-agent/api/sessions/{urllib.parse.quote(session, safe='')}/ws"
    conn = await tornado.websocket.websocket_connect(
        tornado.httpclient.HTTPRequest(url, headers={"Authorization": f"token {TOKEN}"}), max_message_size=1 << 30
    )
    start = time.perf_counter()
    conn.write_message(json.dumps({"type": "run", "request": request, "mode": "react"}))
    received = 0
    while True:
        raw = await conn.read_message()
        if raw is None:
            raise RuntimeError("the socket closed before the run finished")
        received += len(raw)
        event = json.loads(raw)
        if event["type"] == "cell_output" and '"error"' in json.dumps(event["outputs"]):
            raise RuntimeError(f"the hostile code failed: {str(event['outputs'])[:300]}")
        if event["type"] == "error":
            raise RuntimeError(event["message"])
        if event["type"] == "run_finished":
            conn.close()
            if event["status"] != "ok":
                raise RuntimeError(f"run ended {event['status']}")
            return {"seconds": time.perf_counter() - start, "received": received}


def measure_status(port: int, run: Callable[[], dict[str, float]] | None, seconds: float) -> tuple[list[float], dict]:
    done = threading.Event()
    box: dict[str, list[float]] = {}
    poller = threading.Thread(target=lambda: box.setdefault("lat", status_latencies(port, done, time.monotonic() + seconds)))
    poller.start()
    outcome: dict = {}
    try:
        if run is not None:
            outcome = run()
        else:
            time.sleep(seconds)
    finally:
        done.set()
        poller.join()
    return box["lat"], outcome


def server_figures() -> bool:
    ok = True
    with tempfile.TemporaryDirectory() as root:
        script = Path(root, "script.json")
        script.write_text(json.dumps(SCRIPT))
        ollama_port, server_port = free_port(), free_port()
        data = Path(root, "data")
        data.mkdir()
        bin_dir = Path(sys.executable).parent
        ollama = subprocess.Popen(
            [str(bin_dir / "llm-agent"), "fake-ollama", f"--script={script}", f"--port={ollama_port}"], stdout=subprocess.DEVNULL
        )
        server = subprocess.Popen(
            [sys.executable, str(HERE / "_server_process.py"), str(server_port), f"http://127.0.0.1:{ollama_port}", str(data)],
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        try:
            wait_for(f"http://127.0.0.1:{ollama_port}/api/version", ollama)
            wait_for(f"http://127.0.0.1:{server_port}/llm-agent/api/models", server)
            print("\nwarming the sessions (their sandbox kernels start once, not counted) ...", flush=True)
            for session, request in SCENARIOS.values():
                asyncio.run(hostile_run(server_port, session, request))
            measure_status(server_port, None, 2.0)  # the first status runs its probes cold
            lag(server_port, "POST")
            idle, _ = measure_status(server_port, None, 3.0)
            idle_lags = lag(server_port, "DELETE")
            print(
                f"/status idle: p50 {statistics.median(idle):.1f} ms, p99 {pct(idle, 99):.1f} ms "
                f"({len(idle)} requests, each runs the doctor's checks); event-loop lag meanwhile: p99 "
                f"{pct(idle_lags, 99):.1f} ms, max {max(idle_lags):.1f} ms"
            )
            for name, (session, request) in SCENARIOS.items():
                lag(server_port, "POST")
                busy, outcome = measure_status(
                    server_port, lambda s=session, r=request: asyncio.run(hostile_run(server_port, s, r)), 600
                )
                lags = lag(server_port, "DELETE")
                p99 = pct(busy, 99)
                ok &= p99 < STATUS_P99_MS
                print(
                    f"{name}: the run took {outcome['seconds']:.2f} s, {outcome['received'] / 1e6:.1f} MB of events to the client"
                )
                print(
                    f"  /status p99 during the run (ms), {len(busy)} requests {p99:9.1f}   target < "
                    f"{STATUS_P99_MS:g} ms {'PASS' if p99 < STATUS_P99_MS else 'MISS'}; p50 "
                    f"{statistics.median(busy):.1f} ms, p99 busy/idle {p99 / pct(idle, 99):.2f}"
                )
                print(
                    f"  server event-loop lag during the run: p99 {pct(lags, 99):.1f} ms, max {max(lags):.1f} ms "
                    f"({len(lags)} samples)"
                )
        finally:
            stop(server)
            stop(ollama)
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100,200,400,800", help="input sizes in KB, each double the last")
    parser.add_argument("--skip-server", action="store_true")
    parser.add_argument("--only-server", action="store_true")
    args = parser.parse_args()
    sizes = [int(s) * 1000 for s in args.sizes.split(",")]
    ok = True
    if not args.only_server:
        ok &= growth("redact (no environment secrets: the patterns alone)", lambda t: redact(t, []), sizes)
        ok &= growth("render_model_markdown (safe_text.render_markdown)", render_model_markdown, sizes)
    if not args.skip_server:
        ok &= server_figures()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
