"""Shared test configuration: the scripted Ollama and Tavily fixtures, and agent sessions on a warm sandbox."""

import uuid
from pathlib import Path

import cli_helpers
import hypothesis  # noqa: F401  (see below)
import pytest

from llm_agent_magic.agents.session import AgentSession
from llm_agent_magic.config import AgentConfig, LLMConfig, PathsConfig, SandboxConfig
from llm_agent_magic.llm import LLMClient
from llm_agent_magic.sandbox import SandboxKernel
from llm_agent_magic.store import ConversationStore

# hypothesis is imported here, at start, because its pytest plugin imports it at the terminal summary otherwise, and
# pytest rewrites it then with ast.parse, which CPython 3.11.7 can fail with "AST constructor recursion depth mismatch"
# when a finaliser of a test's leftover objects runs during the parse.

pytest_plugins = ["llm_agent_magic.testing.pytest_plugin", "llm_agent_magic.testing.tavily_plugin"]
#: Fixtures that start a real kernel: a test that uses one is slow, whether or not it says so.
KERNEL_FIXTURES = frozenset({"sandbox", "make_session", "kernel", "sk", "sb", "own_session", "kernel_gateway"})


def pytest_collection_modifyitems(items):
    for item in items:
        if KERNEL_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


def pytest_runtest_setup(item):
    cli_helpers.current_test = item  # run_cli checks that a test starting a process is marked slow


@pytest.fixture(scope="module")
def agent_data_root(tmp_path_factory):
    return tmp_path_factory.mktemp("agent-data")


@pytest.fixture(scope="module")
def sandbox(agent_data_root):
    """One warm sandbox kernel per test module: scenarios differ in their conversations, not their kernels."""
    paths = PathsConfig(data_root=str(agent_data_root))
    with SandboxKernel("scenarios", config=SandboxConfig(execution_timeout=60), paths=paths) as kernel:
        yield kernel


@pytest.fixture
async def make_session(sandbox, agent_data_root, fake_ollama_factory):
    """``make(script, **agent_settings) -> (AgentSession, FakeOllama)``; script is a dict or a JSON path."""
    made: list[AgentSession] = []

    def make(script: dict | Path, **agent_settings) -> tuple[AgentSession, object]:
        server = fake_ollama_factory(script)
        paths = PathsConfig(data_root=str(agent_data_root))
        llm = LLMClient(LLMConfig(host=server.url, retry_backoff=0.01, max_retries=0), paths=paths)
        session = AgentSession(
            f"t-{uuid.uuid4().hex[:8]}",
            llm=llm,
            store=ConversationStore(agent_data_root / "store.sqlite"),
            sandbox=sandbox,
            agent_config=AgentConfig(**agent_settings),
        )
        made.append(session)
        return session, server

    yield make
    for session in made:
        await session.llm.aclose()
        session.store.close()
