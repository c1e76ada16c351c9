"""Configuration: one traitlets ``Configurable`` per component.

Every setting has ``help=``, a default and ``config=True``; settings users expect
from the environment (``OLLAMA_HOST``) take their default from it. The same
classes are read from Jupyter config files (``llm_agent_config.py`` / ``.json``),
``%config`` in IPython, and ``--Class.trait=value`` on the command line.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from traitlets import Bool, Dict, Enum, Float, Int, List, TraitError, Type, Unicode, default, validate
from traitlets.config import Config, Configurable

CONFIG_FILE_NAME = "llm_agent_config"
DEFAULT_OLLAMA_HOST = "http://127.0.0.1:11434"


def normalise_host(host: str) -> str:
    """``gpu-box:11434/`` -> ``http://gpu-box:11434``, as users write OLLAMA_HOST both ways."""
    host = host.strip().rstrip("/")
    if host and "://" not in host:
        host = "http://" + host
    return host


#: The model servers the client speaks to; a model named ``<provider>:<name>`` comes from that provider.
PROVIDERS = ("ollama", "openai")


def split_model(spec: str, default_provider: str) -> tuple[str, str]:
    """``(provider, model name)`` of a configured model: ``openai:gpt-4o-mini`` -> ``("openai", "gpt-4o-mini")``.
    Only a known provider's prefix counts: Ollama's names have colons of their own (``qwen3:8b``)."""
    head, sep, rest = spec.partition(":")
    if sep and head in PROVIDERS and rest:
        return head, rest
    return default_provider, spec


class LLMConfig(Configurable):
    """How the agent talks to its model server(s)."""

    provider = Enum(
        list(PROVIDERS),
        default_value="ollama",
        help=(
            "Model server protocol: 'ollama' (host) or 'openai' (any OpenAI-compatible API at base_url: vLLM, "
            "llama.cpp server, LM Studio, LiteLLM, a hosted API). A model named 'ollama:NAME' or 'openai:NAME' "
            "comes from that provider whatever this says."
        ),
    ).tag(config=True, env="LLM_AGENT_PROVIDER")
    base_url = Unicode(
        "",
        help="URL of the OpenAI-compatible API for the 'openai' provider, usually ending in /v1 (e.g. http://gpu-box:8000/v1).",
    ).tag(config=True, env="LLM_AGENT_BASE_URL")
    api_key_env = Unicode(
        "OPENAI_API_KEY",
        help="Name of the environment variable holding the 'openai' provider's API key. The key itself is read "
        "from there only, never stored, logged or recorded. Unset: no key is sent (local servers need none).",
    ).tag(config=True)
    host = Unicode(help="URL of the Ollama server. Defaults to $OLLAMA_HOST, else http://127.0.0.1:11434.").tag(
        config=True, env="OLLAMA_HOST"
    )
    model = Unicode("qwen3:8b", help="General model: chat, ReAct steps, plans and final answers.").tag(config=True)
    classifier_model = Unicode(
        "", help="Model that routes a request to chat, ReAct or plan-and-execute. Empty: use `model`."
    ).tag(config=True)
    coder_model = Unicode("", help="Model that writes and fixes Python code. Empty: use `model`.").tag(config=True)
    embedding_model = Unicode("nomic-embed-text", help="Model used for document embeddings (retrieval).").tag(config=True)
    temperature = Float(0.2, help="Sampling temperature for general calls.").tag(config=True)
    coder_temperature = Float(0.1, help="Sampling temperature for code generation and fixes.").tag(config=True)
    num_ctx = Int(
        16384,
        help="Context window sent with EVERY request (Ollama silently truncates prompts to its small default otherwise).",
    ).tag(config=True)
    request_timeout = Float(300.0, help="Seconds to wait for one Ollama response before giving up.").tag(config=True)
    keep_alive = Unicode("30m", help="How long Ollama keeps the model loaded after a call (Ollama duration syntax).").tag(
        config=True
    )
    seed = Int(
        None,
        allow_none=True,
        help="Sampling seed sent with every chat call, for repeatable runs (compare settings with the same seed). "
        "None: the server picks one each call.",
    ).tag(config=True)
    think = Bool(False, help="Let thinking models think. Thinking never reaches answers either way.").tag(config=True)
    max_retries = Int(2, help="Retries after an HTTP 5xx or a garbled response, with exponential backoff.").tag(config=True)
    retry_backoff = Float(0.5, help="Seconds before the first retry; doubles each time.").tag(config=True)
    embed_batch_size = Int(32, help="Texts per embedding request.").tag(config=True)
    log_format = Enum(
        ["structured", "jsonl", "compact"],
        default_value="jsonl",
        help="Call log format: 'structured' (readable, for people), 'jsonl' (for programs), 'compact' (one line a call).",
    ).tag(config=True)
    cassette_mode = Enum(
        ["live", "record", "replay"],
        default_value="live",
        help="'record' writes every model answer to the cassette, 'replay' serves answers from it with no network.",
    ).tag(config=True)
    cassette_path = Unicode("", help="Cassette file (JSONL) used by record and replay modes.").tag(config=True)

    @default("host")
    def _host_default(self) -> str:
        return normalise_host(os.environ.get("OLLAMA_HOST") or DEFAULT_OLLAMA_HOST)

    @validate("num_ctx")
    def _check_num_ctx(self, proposal: dict[str, Any]) -> int:
        value: int = proposal["value"]
        if value < 512:
            raise TraitError("LLMConfig.num_ctx must be at least 512 tokens")
        return value

    @validate("host")
    def _normalise_host(self, proposal: dict[str, Any]) -> str:
        return normalise_host(proposal["value"])

    def model_for(self, purpose: str) -> str:
        """The model that serves one call purpose."""
        if purpose == "classify":
            return self.classifier_model or self.model
        if purpose in ("code", "fix"):
            return self.coder_model or self.model
        if purpose == "embed":
            return self.embedding_model
        return self.model

    def providers_in_use(self) -> list[str]:
        """The providers the configured models come from, the default provider first."""
        used = [self.provider]
        for spec in (self.model, self.classifier_model, self.coder_model, self.embedding_model):
            provider = split_model(spec, self.provider)[0] if spec else self.provider
            if provider not in used:
                used.append(provider)
        return used

    def probe(self, timeout: float) -> LLMConfig:
        """The same server for a quick question (is it there, which models): live, short timeout, no retries."""
        settings = {name: getattr(self, name) for name in self.trait_names(config=True)}
        settings.update(cassette_mode="live", request_timeout=timeout, max_retries=0)
        return LLMConfig(config=self.config, **settings)

    def temperature_for(self, purpose: str) -> float:
        return self.coder_temperature if purpose in ("code", "fix") else self.temperature


class SandboxConfig(Configurable):
    """Where and how generated code runs."""

    isolation = Enum(
        ["auto", "full", "reduced", "off"],
        default_value="auto",
        help=(
            "'full': bubblewrap + Landlock + limits + seccomp + allowlisted env + audit hook; 'reduced': the same "
            "without bubblewrap (Landlock is then the boundary); 'off': no isolation (explicit opt-out); 'auto': full "
            "when bubblewrap works, else reduced."
        ),
    ).tag(config=True)
    allow_unenforced = Bool(
        False,
        help=(
            "Run the sandbox at 'reduced' even where neither bubblewrap nor Landlock works, so that nothing the "
            "operating system enforces keeps generated code from your files and network (only the audit hook, which "
            "code can switch off, and the limits). Every result then says so."
        ),
    ).tag(config=True)
    kernel_manager_class = Type(
        "jupyter_client.manager.AsyncKernelManager",
        klass="jupyter_client.manager.AsyncKernelManager",
        help=(
            "AsyncKernelManager subclass (or its import path) that starts sandbox kernels. With gateway_url set, "
            "the default becomes llm_agent_magic.sandbox.gateway.GatewayKernelManager."
        ),
    ).tag(config=True)
    gateway_url = Unicode(
        help=(
            "URL of a Jupyter Kernel Gateway or Enterprise Gateway that runs the sandbox kernels (e.g. "
            "http://gateway:8888). Defaults to $LLM_AGENT_GATEWAY_URL. Empty: kernels run on this machine. The "
            "token is read from $LLM_AGENT_GATEWAY_TOKEN (or $JUPYTER_GATEWAY_AUTH_TOKEN) and never logged."
        ),
    ).tag(config=True, env="LLM_AGENT_GATEWAY_URL")
    transfer_max_mb = Float(
        256.0,
        help=(
            "Largest file, in MB, sent to or fetched from a gateway's kernel over the kernel protocol (attached "
            "files, results files, snapshots); larger ones stay where they are, with a note."
        ),
    ).tag(config=True)
    kernel_name = Unicode("", help="Installed kernel spec to run generated code with. Empty: this project's own Python.").tag(
        config=True
    )
    python = Unicode("", help="Python interpreter to run generated code with (overrides kernel_name).").tag(config=True)
    memory_limit_mb = Int(2048, help="Address-space limit of the sandbox kernel, in MB.").tag(config=True)
    cpu_time_limit = Int(600, help="CPU seconds the sandbox kernel may use before it is stopped.").tag(config=True)
    max_processes = Int(64, help="Processes/threads the sandbox user may have (RLIMIT_NPROC inside the sandbox).").tag(
        config=True
    )
    max_file_size_mb = Int(1024, help="Largest file the sandbox may write, in MB.").tag(config=True)
    max_open_files = Int(256, help="Open file descriptors the sandbox may hold.").tag(config=True)
    workspace_quota_mb = Int(
        4096,
        help=(
            "Total disk space, in MB, the sandbox may fill in its workspace and scratch folders. Checked while code "
            "runs: an execution that passes it is interrupted and told so. 0: no quota."
        ),
    ).tag(config=True)
    tmp_size_mb = Int(
        0,
        help=(
            "RAM, in MB, that /tmp, /var/tmp and /dev/shm inside bubblewrap may hold together (they are memory-backed; "
            "/tmp gets half, the others a quarter each). 0: a quarter of memory_limit_mb."
        ),
    ).tag(config=True)
    session_wait_timeout = Float(
        60.0,
        help=(
            "Seconds a run (or %agent vars/pull/push/reset) waits for the session's run lock while another run, of "
            "this or another process or front end, is using the session's sandbox, before giving up with "
            "SessionBusy. 0: refuse at once."
        ),
    ).tag(config=True)
    execution_timeout = Float(120.0, help="Seconds one execution may run before it is interrupted.").tag(config=True)
    idle_timeout = Float(
        900.0,
        help=(
            "Seconds a sandbox kernel may sit unused (no run, push or reset of its session) before it is stopped to "
            "free its memory; its variables come back from the snapshots at the session's next execution, and a "
            "session left idle that long with no kernel is closed (its conversation stays in the store). A kernel "
            "that a run of any process holds is never stopped. 0: never."
        ),
    ).tag(config=True)
    max_live_kernels = Int(
        8,
        help=(
            "Most sandbox kernels one process (the server, a notebook's kernel) keeps running for its sessions. A "
            "session that needs one more stops the least recently used idle kernel first; when every kernel is in "
            "use by a run, it waits up to session_wait_timeout for one to finish, then fails with KernelsBusy. "
            "0: no limit."
        ),
    ).tag(config=True)
    interrupt_grace = Float(5.0, help="Seconds to wait after an interrupt before the kernel is restarted.").tag(config=True)
    startup_timeout = Float(60.0, help="Seconds to wait for the sandbox kernel to start.").tag(config=True)
    pass_env = List(
        Unicode(),
        default_value=[],
        help=(
            "Environment variables (names or glob patterns such as 'MYAPP_*') the sandbox inherits besides the "
            "allowlist (locale, time zone, PATH, USER, thread counts). Names matching scrub_env_patterns are removed "
            "even so."
        ),
    ).tag(config=True)
    scrub_env_patterns = List(
        Unicode(),
        default_value=["*KEY*", "*TOKEN*", "*SECRET*", "*PASSWORD*", "*CREDENTIAL*"],
        help="Environment variables matching these glob patterns are removed from the sandbox, even when allowed.",
    ).tag(config=True)
    allow_network = Bool(False, help="Let generated code open network connections.").tag(config=True)
    extra_ro_binds = List(Unicode(), default_value=[], help="Extra host folders the sandbox may read.").tag(config=True)
    project_dir = Unicode(
        "",
        help="Folder the sandbox may read (read-only), e.g. the notebooks' folder. Empty: the folder holding the data root.",
    ).tag(config=True)
    hide_home_dotfiles = Bool(
        True,
        help=(
            "When the sandbox can read your home folder (the project folder is it, or holds it), hide its dot-files "
            "and dot-folders (.ssh, .cache, .config, .local, browser profiles, tokens...)."
        ),
    ).tag(config=True)
    summary_max_variables = Int(50, help="Most variables described to the model after each execution.").tag(config=True)
    max_cell_output_kb = Int(
        1000,
        help=(
            "Stream output (stdout and stderr) one execution keeps in its cell, in thousands of characters. "
            "Past it the cell keeps the first and last halves with a note, and the whole output is written to "
            "the session's outputs/ folder."
        ),
    ).tag(config=True)
    max_rich_output_mb = Float(
        10.0,
        help="Rich output (images, HTML, ...) one execution keeps, in MB; displays past it are replaced by a note.",
    ).tag(config=True)
    max_displays = Int(100, help="Displays (images, tables, ...) one execution keeps; later ones are left out, with a note.").tag(
        config=True
    )
    snapshot_max_rows = Int(
        100_000_000,
        help=(
            "Most rows a DataFrame or Series snapshot may have to be loaded back (into the sandbox at a restore, or "
            "into your kernel by %agent pull); checked from the file's metadata before it is read."
        ),
    ).tag(config=True)
    snapshot_max_mb = Float(
        1024.0,
        help=(
            "Largest snapshot, in MB of memory once loaded, that is loaded back (into the sandbox at a restore, or "
            "into your kernel by %agent pull); checked from the file's metadata before it is read."
        ),
    ).tag(config=True)
    preload_modules = List(
        Unicode(),
        default_value=["numpy", "pandas", "pyarrow.parquet"],
        help=(
            "Modules the sandbox kernel imports in the background as it starts, so the first cell "
            "(and the first DataFrame snapshot) does not wait for them."
        ),
    ).tag(config=True)

    @validate("max_cell_output_kb", "max_displays")
    def _check_output_limits(self, proposal: dict[str, Any]) -> int:
        value: int = proposal["value"]
        if value < 1:
            raise TraitError(f"SandboxConfig.{proposal['trait'].name} must be at least 1")
        return value

    @validate("idle_timeout", "max_live_kernels")
    def _check_lifecycle(self, proposal: dict[str, Any]) -> Any:
        if proposal["value"] < 0:
            raise TraitError(f"SandboxConfig.{proposal['trait'].name} must be 0 (no limit) or more")
        return proposal["value"]

    @validate("max_rich_output_mb")
    def _check_rich_limit(self, proposal: dict[str, Any]) -> float:
        value: float = proposal["value"]
        if value <= 0:
            raise TraitError("SandboxConfig.max_rich_output_mb must be more than 0")
        return value

    @default("gateway_url")
    def _gateway_url_default(self) -> str:
        return os.environ.get("LLM_AGENT_GATEWAY_URL", "")

    @validate("gateway_url")
    def _check_gateway_url(self, proposal: dict[str, Any]) -> str:
        value: str = proposal["value"].strip().rstrip("/")
        if value and not value.startswith(("http://", "https://")):
            raise TraitError(f"SandboxConfig.gateway_url must start with http:// or https://, not {value!r}")
        return value

    @validate("transfer_max_mb")
    def _check_transfer_limit(self, proposal: dict[str, Any]) -> float:
        value: float = proposal["value"]
        if value <= 0:
            raise TraitError("SandboxConfig.transfer_max_mb must be more than 0")
        return value


class AgentConfig(Configurable):
    """Limits of the agent loops."""

    max_react_iterations = Int(8, help="Thought/action/observation rounds before a ReAct run stops.").tag(config=True)
    max_plan_steps = Int(8, help="Most steps a plan may have.").tag(config=True)
    max_replans = Int(1, help="How often a failed step may trigger a re-plan of the remaining steps.").tag(config=True)
    max_verification_iterations = Int(
        3, help="Rounds of 'does this code answer the question?' before running, when review_before_run is on."
    ).tag(config=True)
    review_before_run = Bool(
        False,
        help="Ask the model to review each generated cell before it runs (a 'verify' call per round). Off by default: "
        "with a local model every call costs seconds, and running the cell tells more; turn it on for a large "
        "or hosted model.",
    ).tag(config=True)
    max_execution_attempts = Int(5, help="Executions of generated code (first try plus fixes) per coder call.").tag(config=True)
    max_output_chars = Int(8000, help="Characters of tool output fed back to the model.").tag(config=True)
    history_messages = Int(10, help="Recent conversation messages given to the model.").tag(config=True)
    include_failed_cells = Bool(
        False,
        help="Also write failed attempts (marked, not run again) among the generated "
        "cells, in every front end; they are always kept in the run's stored events.",
    ).tag(config=True)
    approval = Bool(
        False,
        help="Ask before each generated cell runs (Run / Edit / Skip): the default of a run whose request does not "
        "say (RunRequest.approval; %%agent --approve, the panel's toggle).",
    ).tag(config=True)
    context = Enum(
        ["notebook", "selection", "none"],
        default_value="notebook",
        help="What the agent is shown of the notebook it runs from: 'notebook' (its cells, outputs and last error, "
        "its folder's file names and sizes, the user's variables' names, types and columns; never values or "
        "file contents), 'selection' (only the active cell and the selected text), 'none' (nothing).",
    ).tag(config=True)
    approval_timeout = Float(
        600.0,
        help="Seconds a cell waits for its approval; then the run stops with an ApprovalTimeout error and the cell "
        "does not run. 0: wait until the run is stopped.",
    ).tag(config=True)

    @validate("approval_timeout")
    def _check_approval_timeout(self, proposal: dict[str, Any]) -> float:
        value: float = proposal["value"]
        if value < 0:
            raise TraitError("AgentConfig.approval_timeout must be 0 (wait until stopped) or more seconds")
        return value


class PathsConfig(Configurable):
    """Where the agent keeps its data."""

    data_root = Unicode(
        ".llm_agent", help="Data root (sessions, snapshots, store.sqlite, logs, rag). Relative paths start at the cwd."
    ).tag(config=True, env="LLM_AGENT_DATA_ROOT")

    @default("data_root")
    def _data_root_default(self) -> str:
        return os.environ.get("LLM_AGENT_DATA_ROOT") or ".llm_agent"

    @property
    def root(self) -> Path:
        return Path(self.data_root).expanduser().resolve()

    @property
    def logs_dir(self) -> Path:
        return self.root / "logs"

    @property
    def sessions_dir(self) -> Path:
        return self.root / "sessions"

    @property
    def store_path(self) -> Path:
        return self.root / "store.sqlite"

    @property
    def rag_dir(self) -> Path:
        return self.root / "rag"


DEFAULT_TAVILY_URL = "https://api.tavily.com"


class Secret(str):
    """A string whose ``repr`` hides it, so ``llm-agent config``, logs and tracebacks never show an API key."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "'<set, hidden>'" if self else "''"


class ToolsConfig(Configurable):
    """Settings of the web_search, rag_search and file_analyzer tools."""

    tavily_api_key = Unicode(
        help="Tavily API key for web search. Defaults to $TAVILY_API_KEY. Never logged or shown. Empty: no web search."
    ).tag(config=True, env="TAVILY_API_KEY")
    tavily_base_url = Unicode(
        DEFAULT_TAVILY_URL,
        help=(
            f"URL of the Tavily API. Defaults to $TAVILY_BASE_URL, else {DEFAULT_TAVILY_URL}; "
            "point it at the stand-in (llm_agent_magic.testing.fake_tavily) in tests."
        ),
    ).tag(config=True, env="TAVILY_BASE_URL")
    web_max_results = Int(5, help="Web search results shown to the model per query.").tag(config=True)
    web_search_depth = Enum(
        ["basic", "advanced"], default_value="basic", help="Tavily search depth ('advanced' is slower and costs more)."
    ).tag(config=True)
    web_timeout = Float(30.0, help="Seconds to wait for one web search.").tag(config=True)
    rag_chunk_size = Int(1000, help="Largest document chunk embedded for retrieval, in characters.").tag(config=True)
    rag_chunk_overlap = Int(
        150, help="Characters a chunk repeats from the end of the one before it (at most half of rag_chunk_size)."
    ).tag(config=True)
    rag_top_k = Int(4, help="Document chunks rag_search returns per question.").tag(config=True)
    rag_collection = Unicode(
        "",
        help=(
            "Index that rag_search keeps under <data_root>/rag/. Empty: one per session ('session-<id>'). "
            "A fixed name shares one index between sessions; it follows the session that searched last."
        ),
    ).tag(config=True)
    rag_folders = List(
        Unicode(), default_value=[], help="Folders whose documents rag_search searches, besides the session's files."
    ).tag(config=True)
    rag_max_file_mb = Float(25.0, help="Documents larger than this (MB) are skipped by rag_search.").tag(config=True)
    rag_learn_collection = Unicode("notes", help="Collection that `learn` adds documents to when no --collection is given.").tag(
        config=True
    )
    rag_search_collections = List(
        Unicode(),
        default_value=[],
        help="Learned collections rag_search searches besides the session's documents. Empty: every learned collection.",
    ).tag(config=True)
    rag_max_learn_files = Int(10_000, help="Most files one `learn` takes from the folders it is given.").tag(config=True)
    rag_approximate_above = Int(
        20_000,
        help=(
            "Chunks above which a collection's vectors move from the exact (flat) faiss index to an approximate "
            "one (an HNSW graph), kept up to date as files come and go; bench/rag.py measures its recall against "
            "the flat one."
        ),
    ).tag(config=True)
    rag_hnsw_m = Int(
        48,
        help=(
            "Links per vector in the approximate (HNSW) index: more gives better recall for the time of a query, "
            "a bigger index and a slower build. Applies when the index is next built."
        ),
    ).tag(config=True)
    rag_hnsw_ef_construction = Int(
        64,
        help=(
            "Candidates the approximate (HNSW) index weighs when it links in a new vector: more builds a better "
            "graph, slower (100,000 x 1024 dims took about a minute on 2 cores at 64)."
        ),
    ).tag(config=True)
    rag_hnsw_ef_search = Int(
        160,
        help=(
            "Candidates a query of the approximate (HNSW) index keeps: more is slower and closer to exact "
            "(bench/rag.py prints the trade)."
        ),
    ).tag(config=True)
    rag_index_threads = Int(
        2, help="Threads faiss uses while it builds or adds to the approximate index (a query uses one)."
    ).tag(config=True)
    web_cache_minutes = Float(
        60.0,
        help=(
            "Minutes a web search's results are reused for the same query (and depth and result count), under "
            "<data_root>/web_cache/. 0: always ask Tavily. Not used while a cassette records or replays."
        ),
    ).tag(config=True)
    analyzer_max_rows = Int(100_000, help="Rows of a table file_analyzer reads at most.").tag(config=True)
    analyzer_max_chars = Int(200_000, help="Characters of a document file_analyzer reads at most.").tag(config=True)

    @default("tavily_api_key")
    def _tavily_api_key_default(self) -> str:
        return Secret(os.environ.get("TAVILY_API_KEY", "").strip())

    @default("tavily_base_url")
    def _tavily_base_url_default(self) -> str:
        return (os.environ.get("TAVILY_BASE_URL") or DEFAULT_TAVILY_URL).strip().rstrip("/")

    @validate("tavily_api_key")
    def _hide_key(self, proposal: dict[str, Any]) -> str:
        return Secret(proposal["value"].strip())

    @validate("tavily_base_url")
    def _normalise_tavily_url(self, proposal: dict[str, Any]) -> str:
        return normalise_host(proposal["value"]) or DEFAULT_TAVILY_URL

    @validate("web_cache_minutes")
    def _check_cache_minutes(self, proposal: dict[str, Any]) -> float:
        value: float = proposal["value"]
        if value < 0:
            raise TraitError("ToolsConfig.web_cache_minutes must be 0 (no cache) or more")
        return value

    @validate("rag_chunk_overlap")
    def _check_overlap(self, proposal: dict[str, Any]) -> int:
        value: int = proposal["value"]
        if value < 0:
            raise TraitError("ToolsConfig.rag_chunk_overlap must be 0 or more")
        return value

    @validate(
        "rag_chunk_size",
        "rag_top_k",
        "web_max_results",
        "analyzer_max_rows",
        "analyzer_max_chars",
        "rag_max_learn_files",
        "rag_approximate_above",
        "rag_hnsw_m",
        "rag_hnsw_ef_construction",
        "rag_hnsw_ef_search",
        "rag_index_threads",
    )
    def _check_positive(self, proposal: dict[str, Any]) -> int:
        value: int = proposal["value"]
        if value < 1:
            raise TraitError(f"ToolsConfig.{proposal['trait'].name} must be at least 1")
        return value


CONFIG_CLASSES: tuple[type[Configurable], ...] = (LLMConfig, SandboxConfig, AgentConfig, PathsConfig, ToolsConfig)


def config_search_path() -> list[str]:
    """Folders searched for ``llm_agent_config.{py,json}``: Jupyter's config path, then the cwd (last wins)."""
    from jupyter_core.paths import jupyter_config_path

    return [*reversed(jupyter_config_path()), os.getcwd()]


def load_config_files(paths: Iterable[str] | None = None) -> tuple[Config, dict[tuple[str, str], str]]:
    """Load every config file found; return the merged config and which file set each trait."""
    from traitlets.config.loader import ConfigFileNotFound, JSONFileConfigLoader, PyFileConfigLoader

    merged = Config()
    origin: dict[tuple[str, str], str] = {}
    for folder in paths if paths is not None else config_search_path():
        for loader_cls, ext in ((PyFileConfigLoader, ".py"), (JSONFileConfigLoader, ".json")):
            filename = CONFIG_FILE_NAME + ext
            if not (Path(folder) / filename).is_file():
                continue
            try:
                cfg = loader_cls(filename, path=folder).load_config()
            except ConfigFileNotFound:
                continue
            for section, values in cfg.items():
                if isinstance(values, Config):
                    for key in values:
                        origin[(section, key)] = str(Path(folder) / filename)
            merged.merge(cfg)
    return merged, origin


def trait_rows(instances: Iterable[Configurable]) -> list[dict[str, Any]]:
    """Every configurable trait as a row: class, name, value, default, help, env var."""
    rows = []
    for inst in instances:
        cls = type(inst)
        for name, trait in sorted(cls.class_traits(config=True).items()):
            rows.append(
                {
                    "cls": cls.__name__,
                    "name": name,
                    "value": getattr(inst, name),
                    "default": _default_repr(cls, name, trait),
                    "help": trait.help,
                    "env": trait.metadata.get("env", ""),
                }
            )
    return rows


def _default_repr(cls: type[Configurable], name: str, trait: Any) -> str:
    env = trait.metadata.get("env")
    if name == "host" and cls is LLMConfig:
        return f"${env} or {DEFAULT_OLLAMA_HOST}"
    if env:
        return f"${env} or {trait.default_value!r}"
    if isinstance(trait, Type):  # its import path (traitlets replaces it by the class once an instance exists)
        value = trait.default_value
        return repr(value if isinstance(value, str) else f"{value.__module__}.{value.__qualname__}")
    if isinstance(trait, Dict):
        return repr(trait.default_value)
    return repr(trait.default())


def markdown_table() -> str:
    """The configuration table of docs/configuration.md, generated from the traits."""
    lines = ["| setting | default | what it does |", "| --- | --- | --- |"]
    for cls in CONFIG_CLASSES:
        for name, trait in sorted(cls.class_traits(config=True).items()):
            help_text = " ".join(trait.help.split()).replace("|", "\\|")
            lines.append(f"| `{cls.__name__}.{name}` | `{_default_repr(cls, name, trait)}` | {help_text} |")
    return "\n".join(lines)
