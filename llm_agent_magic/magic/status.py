"""What ``%agent status`` and ``%agent models`` show.

``%agent status``: this session (its id, model, cassette, sandbox kernel and the isolation it has), then
the checks of ``agents/diagnostics.py``, the same list ``llm-agent doctor`` prints. Nothing is checked here.
"""

from __future__ import annotations

import asyncio
import html
from typing import Any

from ..agents.diagnostics import MARKS, Diagnostic, SandboxState, describe_sandbox, run_checks
from ..config import LLMConfig, ToolsConfig
from ..llm import LLMClient
from . import env
from .render import table_data
from .sessions import ShellSessions, env_cassette

PROBE_TIMEOUT = 3.0


def list_models(agent: ShellSessions, llm: LLMConfig) -> list[str]:
    _, _, _, paths = agent.effective()

    async def go() -> list[str]:
        async with LLMClient(llm.probe(PROBE_TIMEOUT), paths=paths) as client:
            return await client.list_models()

    return agent.loop.call(go())


def gather_status(agent: ShellSessions, session_id: str) -> tuple[list[list[str]], list[Diagnostic]]:
    """The session's rows (label, value) and the checks, for the configuration in force now."""
    llm, sandbox_config, _, paths = agent.effective()
    tools = ToolsConfig(config=agent.config())
    session = agent.sessions.get(session_id)
    kernel = session.sandbox if session is not None else None

    async def go() -> tuple[SandboxState, list[Diagnostic]]:
        return await asyncio.gather(
            describe_sandbox(kernel, sandbox_config),
            run_checks(llm, sandbox_config, paths, tools, timeout=PROBE_TIMEOUT),
        )

    sandbox, checks = agent.loop.call(go())
    model = llm.model
    extras = [f"{p}: {m}" for p, m in (("coder", llm.coder_model), ("classifier", llm.classifier_model)) if m]
    if extras:
        model += f" ({', '.join(extras)})"
    cassette = llm.cassette_mode
    if llm.cassette_path and llm.cassette_mode != "live":
        cassette += f" {llm.cassette_path}"
    if env_cassette() is not None:
        cassette += f" (set by ${env.CASSETTE_MODE})"
    rows = [
        ["session", session_id],
        ["model", model],
        ["cassette", cassette],
        ["sandbox", sandbox.state],
        ["isolation", sandbox.isolation],
    ]
    return rows, checks


def status_data(rows: list[list[str]], checks: list[Diagnostic]) -> dict[str, Any]:
    """The session's rows as a table, then one line per check (with its fix), as text and HTML."""
    table = table_data(None, rows)
    text = table["text/plain"] + "\n\n" + "\n".join(str(c) for c in checks)
    cells = "".join(
        f"<tr><td>{MARKS[c.status]}</td><td>{html.escape(c.name)}</td><td>{html.escape(c.detail)}"
        + (f"<br><i>fix:</i> {html.escape(c.fix)}" if c.fix else "")
        + "</td></tr>"
        for c in checks
    )
    return {"text/plain": text, "text/html": f"{table['text/html']}<table><tbody>{cells}</tbody></table>"}
