"""llm-agent-magic: a Jupyter-native LLM agent for data work."""

__version__ = "0.1.0"
