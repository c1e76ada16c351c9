"""pytest fixtures for testing code that talks to Ollama, without Ollama.

Enable them in a ``conftest.py``::

    pytest_plugins = ["llm_agent_magic.testing.pytest_plugin"]

Then::

    def test_answer(fake_ollama):
        fake_ollama.add_rule(purpose="answer", reply="42")
        ...  # code under test finds the server through OLLAMA_HOST
        assert fake_ollama.requests_for("answer")

    def test_scenario(fake_ollama_factory):
        server = fake_ollama_factory("classify_then_answer")  # <scripts folder>/<name>.json

Named scripts are looked up in the folder given by the ``fake_ollama_scripts`` ini option
(relative to the rootdir; default ``tests/scripts``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ._script import ScriptSource
from .fake_ollama import FakeOllama, load_script

__all__ = ["fake_ollama", "fake_ollama_factory", "load_scenario"]

DEFAULT_SCRIPTS_FOLDER = "tests/scripts"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        "fake_ollama_scripts",
        help="Folder (relative to the rootdir) where fake_ollama_factory and load_scenario look up scripts given by name.",
        default=DEFAULT_SCRIPTS_FOLDER,
    )


def load_scenario(
    name_or_path: str | os.PathLike[str], directory: str | os.PathLike[str] = DEFAULT_SCRIPTS_FOLDER
) -> dict[str, Any]:
    """Read and validate a fake-ollama script.

    A bare name (no ``.json``, no folder) means ``<directory>/<name>.json``; anything else
    is a path.
    """
    path = Path(name_or_path)
    if isinstance(name_or_path, str) and path.suffix != ".json" and len(path.parts) == 1:
        path = Path(directory) / f"{name_or_path}.json"
    if not path.is_file():
        raise FileNotFoundError(f"fake-ollama script not found: {path}")
    return load_script(path)


@pytest.fixture
def fake_ollama(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeOllama]:
    """A running FakeOllama with an empty script (every call answers "OK").

    ``OLLAMA_HOST`` points at it for the duration of the test.
    """
    with FakeOllama() as server:
        monkeypatch.setenv("OLLAMA_HOST", server.url)
        yield server


@pytest.fixture
def fake_ollama_factory(request: pytest.FixtureRequest) -> Iterator[Callable[..., FakeOllama]]:
    """Make running FakeOllama servers from scripts; all are stopped after the test.

    Call it with a dict, a path, or the name of a script in the ``fake_ollama_scripts``
    folder.
    """
    folder = request.config.rootpath / request.config.getini("fake_ollama_scripts")
    servers: list[FakeOllama] = []

    def make(script: ScriptSource = None) -> FakeOllama:
        if isinstance(script, (str, os.PathLike)):
            script = load_scenario(script, folder)
        server = FakeOllama(script).start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()
