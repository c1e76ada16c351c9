"""The environment variables that steer the magic in a kernel; ``llm-agent run`` sets them when it starts one.

Kept apart (standard library only) so the runner can name them without importing the agent.
"""

#: The session id; wins over the notebook's path.
SESSION = "LLM_AGENT_SESSION"
#: live | record | replay: wins over ``%agent record/replay/live`` in the notebook.
CASSETTE_MODE = "LLM_AGENT_CASSETTE_MODE"
#: The cassette file for record and replay (relative paths start at the kernel's cwd).
CASSETTE_PATH = "LLM_AGENT_CASSETTE_PATH"
#: Settings as JSON (``{"LLMConfig": {"model": ...}}``): over config files and ``%config``.
CONFIG_JSON = "LLM_AGENT_CONFIG_JSON"
#: "1": the first time a session is opened in this kernel, start it empty (no conversation, no snapshots).
FRESH_SESSION = "LLM_AGENT_FRESH_SESSION"

ALL = (SESSION, CASSETTE_MODE, CASSETTE_PATH, CONFIG_JSON, FRESH_SESSION)
