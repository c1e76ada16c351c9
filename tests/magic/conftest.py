"""A real kernel for the magic tests: one per module, driven through nbclient, cell by cell.

The scripted Ollama server is module-wide too; each test loads its own script into it
(``server.load``) so rules of one test never answer another's calls.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import nbformat
import pytest
from magic_helpers import CELL_TIMEOUT, NotebookKernel
from nbclient import NotebookClient

from llm_agent_magic.magic import env as kernel_env
from llm_agent_magic.testing.fake_ollama import FakeOllama


@pytest.fixture(scope="module")
def server() -> Iterator[FakeOllama]:
    with FakeOllama() as fake:
        yield fake


@pytest.fixture(scope="module")
def kernel(server: FakeOllama, tmp_path_factory: pytest.TempPathFactory) -> Iterator[NotebookKernel]:
    folder = tmp_path_factory.mktemp("notebook")
    (folder / "sales.csv").write_text("region,price\nnorth,10\nsouth,30\n")
    env = {**os.environ, "OLLAMA_HOST": server.url, "LLM_AGENT_DATA_ROOT": str(folder / ".llm_agent")}
    for name in (*kernel_env.ALL, "JPY_SESSION_NAME"):
        env.pop(name, None)
    nb = nbformat.v4.new_notebook()
    client = NotebookClient(nb, timeout=CELL_TIMEOUT, kernel_name="python3", resources={"metadata": {"path": str(folder)}})
    with client.setup_kernel(env=env):
        kernel = NotebookKernel(client, server, folder)
        kernel.run("%load_ext llm_agent_magic")
        yield kernel
    nbformat.write(nb, folder / "magic-tests.ipynb")  # left behind for a person to open after a failure


@pytest.fixture
def own_session(kernel: NotebookKernel, request: pytest.FixtureRequest) -> Iterator[str]:
    """A session of this test's own (its conversation and sandbox), so no test depends on another's leftovers
    or on the order tests run in; the kernel's own variables and settings are put back afterwards."""
    session_id = f"test-{request.node.name}"[:60]
    kernel.run(
        f"import os as _os\n_os.environ['LLM_AGENT_SESSION'] = {session_id!r}\n"
        f"_saved_env = dict(_os.environ)\n_saved_names = set(globals())"
    )
    yield session_id
    kernel.run(
        "import os as _os\n_os.environ.clear(); _os.environ.update(_saved_env)\n"
        "for _name in set(globals()) - _saved_names - {'_saved_names', '_name'}:\n"
        "    if not _name.startswith('_'):\n        del globals()[_name]\n"
        "_os.environ.pop('LLM_AGENT_SESSION', None)\n"
        "get_ipython().run_line_magic('config', 'LLMConfig.model = \"qwen3:8b\"')"
    )
