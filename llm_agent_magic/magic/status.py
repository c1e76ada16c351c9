"""What ``%agent status`` and ``%agent models`` ask of the model server and the sandbox."""

from __future__ import annotations

from typing import Any

from ..config import LLMConfig
from ..exceptions import LLMAgentError
from ..llm import LLMClient
from . import env
from .sessions import KernelAgent, env_cassette

PROBE_TIMEOUT = 3.0


def list_models(agent: KernelAgent, llm: LLMConfig) -> list[str]:
    _, _, _, paths = agent.effective()

    async def go() -> list[str]:
        async with LLMClient(llm.probe(PROBE_TIMEOUT), paths=paths) as client:
            return await client.list_models()

    return agent.loop.call(go())


def _ollama(agent: KernelAgent, llm: LLMConfig) -> str:
    if llm.cassette_mode == "replay":
        return f"not needed: replaying {llm.cassette_path}"
    _, _, _, paths = agent.effective()

    async def go() -> str:
        async with LLMClient(llm.probe(PROBE_TIMEOUT), paths=paths) as client:
            return await client.version()

    try:
        return f"reachable at {llm.host} (version {agent.loop.call(go())})"
    except LLMAgentError as exc:
        return f"NOT reachable at {llm.host}: {str(exc).split('. ')[0]}"


def _sandbox(agent: KernelAgent, session_id: str, level_config: Any) -> tuple[str, str]:
    from ..sandbox.isolation import resolve_layers

    session = agent.sessions.get(session_id)
    sandbox = session.sandbox if session is not None else None
    if sandbox is None:
        try:
            level = f"{resolve_layers(level_config).describe()} (when it starts)"
        except LLMAgentError as exc:
            level = f"unavailable: {exc}"
        return "not started (it starts with the first %%agent cell)", level
    try:
        alive = agent.loop.call(sandbox.async_is_alive(), timeout=10)
    except Exception:
        alive = False
    state = f"running (pid {sandbox.pid})" if alive else "stopped (it restarts with the next cell)"
    if sandbox.attached:
        state += ", shared with another process"
    if sandbox.restarts:
        state += f", restarted {sandbox.restarts} time(s)"
    return state, sandbox.layers.describe() if sandbox.layers is not None else "starting"


_libraries_seen: dict[str, str] = {}


def _libraries(sandbox_config: Any) -> str:
    """Which analysis libraries the sandbox's Python imports (asked once per interpreter: it takes seconds)."""
    from ..sandbox.isolation import analysis_imports, sandbox_python

    key = sandbox_python(sandbox_config).executable
    if key not in _libraries_seen:
        found = analysis_imports(sandbox_config)
        missing = sorted(name for name, ok in found.items() if not ok)
        have = ", ".join(sorted(name for name, ok in found.items() if ok)) or "none"
        _libraries_seen[key] = have + (f"; missing: {', '.join(missing)}" if missing else "")
    return _libraries_seen[key]


def status_rows(agent: KernelAgent, session_id: str) -> list[list[str]]:
    llm, sandbox_config, _, paths = agent.effective()
    model = llm.model
    extras = [f"{p}: {m}" for p, m in (("coder", llm.coder_model), ("classifier", llm.classifier_model)) if m]
    if extras:
        model += f" ({', '.join(extras)})"
    cassette = llm.cassette_mode + (f" {llm.cassette_path}" if llm.cassette_path and llm.cassette_mode != "live" else "")
    if env_cassette() is not None:
        cassette += f" (set by ${env.CASSETTE_MODE})"
    sandbox_state, level = _sandbox(agent, session_id, sandbox_config)
    return [
        ["session", session_id],
        ["model", model],
        ["ollama", _ollama(agent, llm)],
        ["cassette", cassette],
        ["sandbox", sandbox_state],
        ["isolation", level],
        ["libraries", _libraries(sandbox_config)],
        ["data root", str(paths.root)],
    ]
