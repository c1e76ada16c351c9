"""llm-agent-magic: a Jupyter-native LLM agent for data work."""

__version__ = "0.1.0"


def load_ipython_extension(ipython: object) -> None:
    """``%load_ext llm_agent_magic``: register ``%%agent`` and ``%agent`` (see ``llm_agent_magic.magic``)."""
    from .magic import load_ipython_extension as load

    load(ipython)


def unload_ipython_extension(ipython: object) -> None:
    from .magic import unload_ipython_extension as unload

    unload(ipython)


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    """Where the built JupyterLab extension is (``jupyter labextension develop`` links it for a checkout)."""
    return [{"src": "labextension", "dest": "llm-agent-magic"}]
