"""Is everything the agent needs in place? The checks behind ``llm-agent doctor``, ``%agent status`` and the
server's status route, computed here once, as plain data; the front ends only render them.

``run_checks`` gives a list of ``Diagnostic`` (name, ``ok``/``warn``/``fail``, what was seen, how to fix it):
Ollama and each configured model, the Tavily key, each isolation layer of the sandbox and the level in
force, the analysis libraries the sandbox can import, and the data root. ``describe_sandbox`` says how one
session's sandbox kernel is doing, for the front ends that hold a session.
"""

from __future__ import annotations

import asyncio
import tempfile
from dataclasses import asdict, dataclass

from ..config import LLMConfig, PathsConfig, SandboxConfig, ToolsConfig
from ..exceptions import LLMAgentError, LLMError
from ..llm import LLMClient
from ..sandbox import SandboxKernel
from ..sandbox.isolation import analysis_imports, probe, resolve_layers
from ..text import full_model_name
from ..tools.rag.library import list_collections

MARKS = {"ok": "✓", "warn": "!", "fail": "✗"}


@dataclass(frozen=True)
class Diagnostic:
    """One thing checked: its name, ``ok``/``warn``/``fail``, what was seen and, unless ok, how to fix it."""

    name: str
    status: str
    detail: str
    fix: str = ""

    def to_dict(self) -> dict[str, str]:
        return asdict(self)

    def __str__(self) -> str:
        line = f"{MARKS[self.status]} {self.name}: {self.detail}"
        return line + (f"\n    fix: {self.fix}" if self.fix else "")


async def run_checks(
    llm: LLMConfig, sandbox: SandboxConfig, paths: PathsConfig, tools: ToolsConfig, *, timeout: float = 10.0
) -> list[Diagnostic]:
    """Every check, in a fixed order. The probes that run programs (the sandbox's layers and Python, the data
    root) run in a thread, beside the questions to Ollama, so that a caller's event loop is never blocked."""
    models, machine = await asyncio.gather(
        check_ollama(llm, paths, timeout, retrieval=retrieval_in_use(tools, paths)),
        asyncio.to_thread(_machine_checks, sandbox, paths),
    )
    return [*models, check_tavily(tools), *machine]


def _machine_checks(sandbox: SandboxConfig, paths: PathsConfig) -> list[Diagnostic]:
    if resolve_layers(sandbox).level == "gateway":  # this machine's layers and Python do not run the code
        return [*check_gateway(sandbox), check_data_root(paths)]
    return [*check_sandbox(sandbox), check_libraries(sandbox), check_data_root(paths)]


def check_gateway(config: SandboxConfig) -> list[Diagnostic]:
    """The gateway that runs the sandbox's kernels: does it answer, with the kernel spec asked for; and the
    isolation it stands for (what its kernel image, pod or container enforces, which this process cannot see)."""
    from ..sandbox import gateway

    found = gateway.probe(config)
    return [
        Diagnostic("sandbox gateway", "ok" if found["ok"] else "fail", found["detail"], found["fix"]),
        Diagnostic("sandbox isolation", "warn", f"level in force: {gateway.describe_level()}",
                   "make sure the gateway's kernels run in containers or pods without your credentials or network "
                   "access they do not need (see the README: running the sandbox on Kubernetes)"),
    ]


def retrieval_in_use(tools: ToolsConfig, paths: PathsConfig) -> bool:
    """Whether anything needs the embedding model: a collection learned, or folders set to search."""
    return bool(tools.rag_folders) or bool(list_collections(paths))


async def check_ollama(
    config: LLMConfig, paths: PathsConfig, timeout: float = 10.0, *, retrieval: bool = True
) -> list[Diagnostic]:
    """The server, then each model the configuration names (general, classifier, coder, embeddings). Without
    ``retrieval`` in use, a missing embedding model is a warning: nothing the user does yet needs it."""
    if config.cassette_mode == "replay":
        return [Diagnostic("ollama", "ok", f"not needed: replaying {config.cassette_path}")]
    async with LLMClient(config.probe(timeout), paths=paths) as client:
        try:
            version = await client.version()
            pulled = set(await client.list_models())
        except LLMError as exc:
            return [
                Diagnostic(
                    "ollama",
                    "fail",
                    f"no Ollama server answers at {config.host} ({exc.__class__.__name__})",
                    "start it with `ollama serve`, or set OLLAMA_HOST to where it runs",
                )
            ]
    checks = [Diagnostic("ollama", "ok", f"Ollama {version} reachable at {config.host}")]
    roles: dict[str, list[str]] = {}  # one check per model, naming every role it has
    for role, purpose in (("model", "answer"), ("classifier_model", "classify"), ("coder_model", "code"),
                          ("embedding_model", "embed")):
        roles.setdefault(config.model_for(purpose), []).append(role)
    for name, named in roles.items():
        who = " and ".join([", ".join(named[:-1]), named[-1]] if len(named) > 1 else named)
        verb = "are" if len(named) > 1 else "is"
        if full_model_name(name) in pulled:
            checks.append(Diagnostic(f"model {name}", "ok", f"{who} {verb} pulled"))
        else:
            missing = f"{who} {name!r} {verb} not pulled"
            if named == ["embedding_model"] and not retrieval:
                missing += " (needed only for retrieval: /learn, %agent learn, ToolsConfig.rag_folders)"
            status = "warn" if named == ["embedding_model"] and not retrieval else "fail"
            checks.append(Diagnostic(f"model {name}", status, missing, f"ollama pull {name}"))
    return checks


def check_tavily(tools: ToolsConfig) -> Diagnostic:
    """Web search needs ``ToolsConfig.tavily_api_key`` (``$TAVILY_API_KEY`` by default); the key is never shown."""
    if tools.tavily_api_key:
        return Diagnostic("tavily", "ok", "a Tavily API key is set (web search available)")
    return Diagnostic(
        "tavily",
        "warn",
        "no Tavily API key (ToolsConfig.tavily_api_key): web search is unavailable, everything else works",
        "get a key at tavily.com and `export TAVILY_API_KEY=...` before starting Jupyter, "
        "or set ToolsConfig.tavily_api_key",
    )


def check_sandbox(config: SandboxConfig) -> list[Diagnostic]:
    """Each isolation layer on this machine, then the level in force and what the operating system enforces."""
    report = probe(config)
    layers = {
        "bubblewrap": report.bubblewrap,
        "user namespaces": report.user_namespaces,
        "landlock": report.landlock,
        "resource limits": report.rlimits,
        "seccomp": report.seccomp,
        "audit hook": report.audit_hook,
    }
    checks = [
        Diagnostic(f"sandbox {name}", "ok" if c.ok else "warn", c.detail, "" if c.ok else c.fix)
        for name, c in layers.items()
    ]
    enforced = report.enforced_by
    if report.level == "full":
        level_status = "ok"
    elif report.level == "reduced" and (enforced or config.allow_unenforced):
        level_status = "warn"
    else:
        level_status = "fail"
    boundary = f"enforced by the operating system: {', '.join(enforced)}" if enforced else \
        "nothing the operating system enforces contains generated code"
    fix = ""
    if level_status != "ok":
        fix = report.bubblewrap.fix if report.level == "reduced" else "set SandboxConfig.isolation = 'auto'"
        if report.level == "reduced" and not enforced:
            fix = f"{report.bubblewrap.fix}; or {report.landlock.fix}"
    detail = "; ".join([f"level in force: {report.level}", boundary, *report.notes])
    checks.append(Diagnostic("sandbox isolation", level_status, detail, fix))
    return checks


_imports_seen: dict[tuple[str, str], dict[str, bool]] = {}


def check_libraries(config: SandboxConfig) -> Diagnostic:
    """Which analysis libraries the sandbox's Python imports (asked once per interpreter: it takes seconds)."""
    key = (config.python, config.kernel_name)  # the settings that choose the interpreter
    if key not in _imports_seen:
        _imports_seen[key] = analysis_imports(config)
    found = _imports_seen[key]
    missing = sorted(name for name, ok in found.items() if not ok)
    have = ", ".join(sorted(name for name, ok in found.items() if ok)) or "none"
    if not missing:
        return Diagnostic("sandbox libraries", "ok", f"can import {have}")
    return Diagnostic(
        "sandbox libraries",
        "warn",
        f"can import {have}; missing: {', '.join(missing)}",
        "pip install 'llm-agent-magic[analysis]' into the sandbox's Python",
    )


def check_data_root(paths: PathsConfig) -> Diagnostic:
    root = paths.root
    try:
        root.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=root, prefix=".doctor-"):
            pass
    except OSError as exc:
        return Diagnostic(
            "data root",
            "fail",
            f"{root} is not writable ({exc.strerror or exc})",
            "set LLM_AGENT_DATA_ROOT or PathsConfig.data_root to a writable folder",
        )
    return Diagnostic("data root", "ok", f"{root} is writable")


@dataclass(frozen=True)
class SandboxState:
    """How one session's sandbox kernel is doing, and the isolation it has (or will get when it starts)."""

    state: str
    isolation: str


async def describe_sandbox(kernel: SandboxKernel | None, config: SandboxConfig) -> SandboxState:
    if kernel is None:
        try:
            level = f"{(await asyncio.to_thread(resolve_layers, config)).describe()} (when it starts)"
        except LLMAgentError as exc:
            level = f"unavailable: {exc}"
        return SandboxState("not started (it starts with the first %%agent cell)", level)
    try:
        alive = await asyncio.wait_for(kernel.async_is_alive(), 10)
    except Exception:  # a kernel that cannot say it is alive (no answer, its loop gone) is not usable
        alive = False
    where = f"on the gateway {kernel.config.gateway_url}" if kernel.level == "gateway" else f"(pid {kernel.pid})"
    state = f"running {where}" if alive else "stopped (it restarts with the next cell)"
    if kernel.attached:
        state += ", shared with another process"
    if kernel.restarts:
        state += f", restarted {kernel.restarts} time(s)"
    return SandboxState(state, kernel.layers.describe() if kernel.layers is not None else "starting")
