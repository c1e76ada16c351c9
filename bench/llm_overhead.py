"""What the LLM client adds on top of a bare ``ollama.AsyncClient`` and a bare ``openai.AsyncOpenAI`` (the
scripted server's OpenAI-compatible API), measured side by side in one run.

The scripted server runs in its own process with zero delay, so the figures are
the client's own cost: redaction, call log, thinking filter, retries and error mapping,
defensive bookkeeping. The bare client is given what any careful caller would
give it - the same request fields (options, keep_alive, think) and the same
timeout - so the ratio is what our layer adds, not what those settings cost.

Fairness: both clients get the same warm-up, then calls alternate one by one, bare-wrapped then
wrapped-bare (so neither always goes first), the same number for each, and each side's figure is the
median of its calls (per streamed token: a call's time over its tokens). Machine noise (other processes,
the garbage collector) then hits both alike and a stray spike moves neither median. The ratio is the
median wrapped over the median bare; the range beside it is that ratio within each round, to show how
steady it was. Beside it, the same ratio of this process's CPU time (the client's own work, which the
scripted server's and other processes' scheduling do not blur; stricter, since the bare call's CPU time is
less than its wall time). The call log is written by a thread off the calls' path; the CPU it took per call
is printed beside the figures.

    python bench/llm_overhead.py [--calls 60] [--rounds 9] [--tokens 300] [--protocol ollama|openai|both]

Target (issues 2 and 24): wrapped / bare under 1.10, per call and per streamed token, for each protocol.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import ollama
import openai

from llm_agent_magic.config import LLMConfig, PathsConfig
from llm_agent_magic.llm import CallLog, CallRecord, LLMClient

TARGET = 1.10
MESSAGES = [
    {"role": "system", "content": "You are a data analysis assistant. " * 20},
    {"role": "user", "content": "Summarise the sales table by region and month, please."},
]


def start_server(script: Path) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "llm_agent_magic.cli", "fake-ollama", f"--script={script}"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if "listening on" not in line:
        proc.kill()
        raise SystemExit(f"the scripted server did not start: {line!r}")
    return proc, line.strip().rsplit(" ", 1)[-1]


async def bare_call(client: ollama.AsyncClient, stream: bool) -> int:
    kwargs = {"options": {"num_ctx": 16384, "temperature": 0.2}, "keep_alive": "30m", "think": False}
    if not stream:
        await client.chat(model="qwen3:8b", messages=MESSAGES, **kwargs)
        return 1
    n = 0
    async for _ in await client.chat(model="qwen3:8b", messages=MESSAGES, stream=True, **kwargs):
        n += 1
    return n


async def bare_openai_call(client: openai.AsyncOpenAI, stream: bool) -> int:
    # What a careful caller sends: the same temperature, usage at the end of a stream, thinking switched off.
    kwargs: dict[str, Any] = {"temperature": 0.2, "extra_body": {"chat_template_kwargs": {"enable_thinking": False}}}
    if not stream:
        await client.chat.completions.create(model="qwen3:8b", messages=MESSAGES, stream=False, **kwargs)  # type: ignore[arg-type]
        return 1
    n = 0
    chunks = await client.chat.completions.create(
        model="qwen3:8b",
        messages=MESSAGES,
        stream=True,
        stream_options={"include_usage": True},
        **kwargs,  # type: ignore[arg-type]
    )
    async for chunk in chunks:
        if chunk.choices and chunk.choices[0].delta.content:
            n += 1
    return n


async def wrapped_call(client: LLMClient, stream: bool) -> int:
    if not stream:
        await client.chat(MESSAGES, purpose="answer")
        return 1
    n = 0
    async for _ in client.stream_chat(MESSAGES, purpose="answer"):
        n += 1
    return n


class TimedCallLog(CallLog):
    """The call log, with the CPU time its writer thread spends rendering and writing records."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.cpu = 0.0
        self.records = 0

    def _append_batch(self, batch: list[CallRecord]) -> None:
        start = time.thread_time()
        super()._append_batch(batch)
        self.cpu += time.thread_time() - start
        self.records += len(batch)


async def once(fn: Callable[[], Awaitable[int]]) -> tuple[float, float]:
    """Seconds per unit (a call, or a streamed token) of one call of ``fn``: wall time, and CPU time of this
    process (the client's own work, whatever the scripted server and the machine's other processes do)."""
    wall, cpu = time.perf_counter(), time.process_time()
    units = await fn()
    return (time.perf_counter() - wall) / units, (time.process_time() - cpu) / units


@dataclass
class Figure:
    bare: float  # median wall seconds per unit
    wrapped: float
    ratio: float  # wrapped / bare
    low: float  # the lowest and highest ratio of a round
    high: float
    cpu_ratio: float  # the same of the client process's CPU time


async def measure(url: str, calls: int, rounds: int, data_root: str, protocol: str) -> tuple[dict[str, Figure], float]:
    config = LLMConfig(provider=protocol, host=url, base_url=f"{url}/v1")
    timeout = httpx.Timeout(config.request_timeout, connect=10.0)
    purpose = {"X-LLM-Agent-Purpose": "answer"}
    bare: Any
    if protocol == "openai":
        bare = openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="none", max_retries=0, timeout=timeout, default_headers=purpose)
        call = bare_openai_call
    else:
        bare = ollama.AsyncClient(host=url, headers=purpose, timeout=timeout)
        call = bare_call  # type: ignore[assignment]
    paths = PathsConfig(data_root=data_root)
    log = TimedCallLog(paths.logs_dir, fmt=config.log_format)
    wrapped = LLMClient(config, paths=paths, call_log=log)
    results: dict[str, Figure] = {}
    median = statistics.median
    try:
        for stream in (False, True):

            def bare_once(stream: bool = stream) -> Awaitable[int]:
                return call(bare, stream)

            def wrapped_once(stream: bool = stream) -> Awaitable[int]:
                return wrapped_call(wrapped, stream)

            for _ in range(10):  # the same warm-up for both: connection pools, code paths, caches
                await bare_once()
                await wrapped_once()
            bare_times: list[tuple[float, float]] = []
            wrapped_times: list[tuple[float, float]] = []
            round_ratios = []
            for _ in range(rounds):
                b_round, w_round = [], []
                for i in range(calls):
                    if i % 2:
                        w_round.append(await once(wrapped_once))
                        b_round.append(await once(bare_once))
                    else:
                        b_round.append(await once(bare_once))
                        w_round.append(await once(wrapped_once))
                round_ratios.append(median(w for w, _ in w_round) / median(b for b, _ in b_round))
                bare_times += b_round
                wrapped_times += w_round
            b, w = median(t for t, _ in bare_times), median(t for t, _ in wrapped_times)
            results["per streamed token" if stream else "per call"] = Figure(
                b,
                w,
                w / b,
                min(round_ratios),
                max(round_ratios),
                median(c for _, c in wrapped_times) / median(c for _, c in bare_times),
            )
    finally:
        await bare.close()
        await wrapped.aclose()  # flushes the call log
    return results, log.cpu / max(1, log.records)


def writer_lag(folder: str, records: int = 2000) -> tuple[float, float]:
    """How late a thread that sleeps 0.5 ms at a time (as the event loop's waits on a socket) wakes while the
    call log's writer renders ``records`` records: median and worst, in seconds."""
    from llm_agent_magic.redaction import redact_messages

    reply = " ".join(f"word{i}" for i in range(300))
    messages = redact_messages(MESSAGES)
    batch = [CallRecord("answer", "qwen3:8b", messages, response=f"{reply} {i}") for i in range(records)]
    log = CallLog(folder)
    writer = threading.Thread(target=log._append_batch, args=(batch,))
    lags = []
    writer.start()
    while writer.is_alive():
        start = time.perf_counter()
        time.sleep(0.0005)
        lags.append(time.perf_counter() - start - 0.0005)
    log.close()
    return statistics.median(lags), max(lags)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=60, help="calls per round")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--tokens", type=int, default=300, help="words in the streamed reply")
    parser.add_argument("--protocol", choices=["ollama", "openai", "both"], default="both")
    args = parser.parse_args()
    protocols = ["ollama", "openai"] if args.protocol == "both" else [args.protocol]
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "script.json"
        reply = " ".join(f"word{i}" for i in range(args.tokens))
        script.write_text(f'{{"default": "{reply}"}}')
        proc, url = start_server(script)
        try:
            results = {
                protocol: asyncio.run(measure(url, args.calls, args.rounds, str(Path(tmp) / "data"), protocol))
                for protocol in protocols
            }
        finally:
            proc.terminate()
            proc.wait(10)
        lag = writer_lag(str(Path(tmp) / "lag"))
    worst = 0.0
    bare_names = {"ollama": "ollama.AsyncClient", "openai": "openai.AsyncOpenAI (/v1 API)"}
    for protocol, (figures, log_cpu) in results.items():
        print(
            f"LLM client overhead vs bare {bare_names[protocol]} (scripted server, zero delay, "
            f"{args.rounds} rounds of {args.calls} interleaved calls each)"
        )
        for name, f in figures.items():
            worst = max(worst, f.ratio)
            verdict = "PASS" if f.ratio < TARGET else "MISS"
            print(
                f"  {name:<19} bare {f.bare * 1e6:8.1f} us   wrapped {f.wrapped * 1e6:8.1f} us   ratio {f.ratio:.3f} "
                f"(rounds {f.low:.3f}-{f.high:.3f}; client CPU {f.cpu_ratio:.3f})  (target < {TARGET:.2f}) {verdict}"
            )
        print(f"  call log writer thread, off the calls' path: {log_cpu * 1e6:.1f} us CPU per call")
    print(
        f"A thread's wake-up lag while the call log writes 2000 records (it hands the GIL over every 0.5 ms): "
        f"median {lag[0] * 1e6:.0f} us, worst {lag[1] * 1e6:.0f} us"
    )
    return 0 if worst < TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
