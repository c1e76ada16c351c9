"""``llm-agent demo``: the smallest real end-to-end path, a streamed answer through the client.

A live Ollama is used when one answers at the configured host and has the model;
otherwise the scripted server stands in, and the demo says which it used.
"""

from __future__ import annotations

import sys

from ..config import LLMConfig, PathsConfig
from ..exceptions import LLMError
from ..llm import LLMClient

DEMO_ANSWER = (
    "Notebooks keep code, results and the reasoning between them in one place, so an analysis can be "
    "read, re-run and checked by someone else. llm-agent-magic adds an agent that writes that code, runs it "
    "in a sandbox and leaves the cells behind."
)
DEMO_SCRIPT = {"rules": [{"purpose": "answer", "reply": DEMO_ANSWER, "token_delay_ms": 15}], "default": DEMO_ANSWER}


async def live_model_available(config: LLMConfig, paths: PathsConfig) -> str | None:
    """Why a live Ollama cannot serve the demo, or None when it can."""
    probe = LLMConfig(config=config.config, host=config.host, request_timeout=5.0)
    async with LLMClient(probe, paths=paths) as client:
        try:
            models = await client.list_models()
        except LLMError as exc:
            return str(exc).split(". ")[0]
    wanted = config.model if ":" in config.model else config.model + ":latest"
    return None if wanted in models else f"model {config.model} is not pulled there"


async def run_demo(config: LLMConfig, paths: PathsConfig, question: str) -> int:
    from ..testing.fake_ollama import FakeOllama

    why_not_live = await live_model_available(config, paths)
    server = None
    if why_not_live is None:
        print(f"Using the live Ollama at {config.host} with model {config.model}.")
    else:
        server = FakeOllama(DEMO_SCRIPT).start()
        print(f"No live model ({why_not_live}); using the scripted Ollama server at {server.url}.")
        config.host = server.url
    messages = [
        {"role": "system", "content": "You are a concise assistant for people who analyse data in notebooks."},
        {"role": "user", "content": question},
    ]
    print(f"\nQ: {question}\nA: ", end="", flush=True)
    try:
        async with LLMClient(config, paths=paths) as client:
            stream = client.stream_chat(messages, purpose="answer")
            async for piece in stream:
                sys.stdout.write(piece)
                sys.stdout.flush()
            result = stream.result
        assert result is not None
        print(
            f"\n\n[{result.model}: {result.prompt_tokens} prompt + {result.completion_tokens} completion tokens, "
            f"{result.duration_ms:.0f} ms; call log in {client.call_log.path}]"
        )
        return 0
    except LLMError as exc:
        print(f"\n\nThe demo call failed: {exc}", file=sys.stderr)
        return 1
    finally:
        if server is not None:
            server.stop()
