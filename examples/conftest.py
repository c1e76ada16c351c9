"""nbval settings for the example notebooks (run by `make test` with `pytest --nbval examples`).

The generated-cells bundle (application/vnd.llm-agent.cells+json) carries run and cell ids
that differ on every run by design; its cells are still compared through the plain
renderings (text/plain, text/html) of the same output, so nothing the
user sees goes unchecked.
"""

import pytest

from llm_agent_magic.cells import CELLS_MIME


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items):
    for item in items:
        notebook = getattr(item, "parent", None)
        if hasattr(notebook, "skip_compare") and CELLS_MIME not in notebook.skip_compare:
            notebook.skip_compare = (*notebook.skip_compare, CELLS_MIME)
