"""Is everything the agent needs in place? The checks behind ``llm-agent doctor``, ``%agent status`` and the
server's status route, computed here once, as plain data; the front ends only render them.

``run_checks`` gives a list of ``Diagnostic`` (name, ``ok``/``warn``/``fail``, what was seen, how to fix it):
each configured model server (Ollama, an OpenAI-compatible API) and model, the Tavily key, each isolation
layer of the sandbox and the level in force, the analysis libraries the sandbox can import, and the data root.
``describe_sandbox`` says how one session's sandbox kernel is doing, for the front ends that hold a session.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from dataclasses import asdict, dataclass

from ..config import LLMConfig, PathsConfig, SandboxConfig, ToolsConfig, split_model
from ..exceptions import LLMAgentError, LLMError, ModelServerAuthError
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
        check_models(llm, paths, timeout, retrieval=retrieval_in_use(tools, paths)),
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
        Diagnostic(
            "sandbox isolation",
            "warn",
            f"level in force: {gateway.describe_level()}",
            "make sure the gateway's kernels run in containers or pods without your credentials or network "
            "access they do not need (see docs/sandbox.md: running the sandbox on Kubernetes)",
        ),
    ]


def retrieval_in_use(tools: ToolsConfig, paths: PathsConfig) -> bool:
    """Whether anything needs the embedding model: a collection learned, or folders set to search."""
    return bool(tools.rag_folders) or bool(list_collections(paths))


async def check_models(
    config: LLMConfig, paths: PathsConfig, timeout: float = 10.0, *, retrieval: bool = True
) -> list[Diagnostic]:
    """Each provider the configuration uses (its server, its key), then each model it names (general,
    classifier, coder, embeddings) on the provider that serves it. Without ``retrieval`` in use, a missing
    embedding model is a warning: nothing the user does yet needs it."""
    if config.cassette_mode == "replay":
        return [Diagnostic(p, "ok", f"not needed: replaying {config.cassette_path}") for p in config.providers_in_use()]
    checks: list[Diagnostic] = []
    offered: dict[str, set[str]] = {}
    async with LLMClient(config.probe(timeout), paths=paths) as client:
        for provider in config.providers_in_use():
            check, names = await _check_provider(client, config, provider)
            checks.append(check)
            if names is not None:
                offered[provider] = names
    roles: dict[str, list[str]] = {}  # one check per model, naming every role it has
    for role, purpose in (
        ("model", "answer"),
        ("classifier_model", "classify"),
        ("coder_model", "code"),
        ("embedding_model", "embed"),
    ):
        roles.setdefault(config.model_for(purpose), []).append(role)
    for spec, named in roles.items():
        provider, name = split_model(spec, config.provider)
        if provider not in offered:
            continue  # its server failed its own check, which says what to do
        who = " and ".join([", ".join(named[:-1]), named[-1]] if len(named) > 1 else named)
        verb = "are" if len(named) > 1 else "is"
        names = offered[provider]
        # An embedding model nothing uses yet (no collection learned, no folder to search) is not a problem.
        optional = named == ["embedding_model"] and not retrieval
        status, note = (
            ("warn", " (needed only for retrieval: /learn, %agent learn, ToolsConfig.rag_folders)") if optional else ("fail", "")
        )
        if provider == "ollama":
            if full_model_name(name) in names:
                checks.append(Diagnostic(f"model {spec}", "ok", f"{who} {verb} pulled"))
            else:
                checks.append(
                    Diagnostic(f"model {spec}", status, f"{who} {name!r} {verb} not pulled{note}", f"ollama pull {name}")
                )
        elif name in names:
            checks.append(Diagnostic(f"model {spec}", "ok", f"{who} {verb} served by the openai server"))
        else:
            listed = ", ".join(sorted(names)[:8]) or "none"
            checks.append(
                Diagnostic(
                    f"model {spec}",
                    status,
                    f"{who} {name!r} {verb} not served at {config.base_url} (it serves: {listed}){note}",
                    f"serve {name} there (e.g. `vllm serve {name}`), or set LLMConfig.{named[0]} to a model it serves",
                )
            )
    return checks


#: Kept for callers of the Ollama-only name.
check_ollama = check_models


async def _check_provider(client: LLMClient, config: LLMConfig, provider: str) -> tuple[Diagnostic, set[str] | None]:
    """Whether one provider's server answers, and the names of the models it offers (None when it does not)."""
    try:
        version = await client.version(provider)
        names = await client.provider_models(provider)
    except LLMError as exc:
        if provider == "ollama":
            return Diagnostic(
                "ollama",
                "fail",
                f"no Ollama server answers at {config.host} ({exc.__class__.__name__})",
                "start it with `ollama serve`, or set OLLAMA_HOST to where it runs",
            ), None
        return Diagnostic("openai", "fail", f"{exc.__class__.__name__}: {exc}", _openai_fix(config, exc)), None
    if provider == "ollama":
        full = {full_model_name(n) for n in names}
        return Diagnostic("ollama", "ok", f"{version} reachable at {config.host}"), full
    key = (
        f"key from ${config.api_key_env}"
        if os.environ.get(config.api_key_env)
        else f"no key (${config.api_key_env} is not set; fine for a server that needs none)"
    )
    return Diagnostic("openai", "ok", f"{version} at {config.base_url}, {key}"), set(names)


def _openai_fix(config: LLMConfig, exc: LLMError) -> str:
    if isinstance(exc, ModelServerAuthError):
        return (
            f"export the server's API key as {config.api_key_env} before starting Jupyter (LLMConfig.api_key_env "
            f"names the variable)"
        )
    if not config.base_url:
        return "set LLMConfig.base_url (or $LLM_AGENT_BASE_URL) to the server's API, e.g. http://HOST:8000/v1"
    return f"check LLMConfig.base_url ({config.base_url}): the server must run there, and the URL usually ends in /v1"


def check_tavily(tools: ToolsConfig) -> Diagnostic:
    """Web search needs ``ToolsConfig.tavily_api_key`` (``$TAVILY_API_KEY`` by default); the key is never shown."""
    if tools.tavily_api_key:
        return Diagnostic("tavily", "ok", "a Tavily API key is set (web search available)")
    return Diagnostic(
        "tavily",
        "warn",
        "no Tavily API key (ToolsConfig.tavily_api_key): web search is unavailable, everything else works",
        "get a key at tavily.com and `export TAVILY_API_KEY=...` before starting Jupyter, or set ToolsConfig.tavily_api_key",
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
        Diagnostic(f"sandbox {name}", "ok" if c.ok else "warn", c.detail, "" if c.ok else c.fix) for name, c in layers.items()
    ]
    enforced = report.enforced_by
    if report.level == "full":
        level_status = "ok"
    elif report.level == "reduced" and (enforced or config.allow_unenforced):
        level_status = "warn"
    else:
        level_status = "fail"
    boundary = (
        f"enforced by the operating system: {', '.join(enforced)}"
        if enforced
        else "nothing the operating system enforces contains generated code"
    )
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
        return SandboxState("not started (it starts with the first code the agent runs)", level)
    if not kernel.started:  # never started (layers are chosen at the launch), or stopped when idle
        if kernel.layers is None:
            return SandboxState("not started (it starts with the first code the agent runs)", "chosen when it starts")
        return SandboxState(
            "stopped (it starts again, restoring the variables, with the next code the agent runs)", kernel.layers.describe()
        )
    try:
        alive = await asyncio.wait_for(kernel.async_is_alive(), 10)
    except Exception:  # noqa: BLE001  # a kernel that cannot say it is alive (no answer, its loop gone) is not usable
        alive = False
    where = f"on the gateway {kernel.config.gateway_url}" if kernel.level == "gateway" else f"(pid {kernel.pid})"
    state = f"running {where}" if alive else "stopped (it restarts with the next cell)"
    if kernel.attached:
        state += ", shared with another process"
    if kernel.restarts:
        state += f", restarted {kernel.restarts} time(s)"
    return SandboxState(state, kernel.layers.describe() if kernel.layers is not None else "starting")
