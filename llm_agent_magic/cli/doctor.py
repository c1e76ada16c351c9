"""``llm-agent doctor``: is everything the agent needs in place? Each failed check says how to fix it."""

from __future__ import annotations

import os
import tempfile
from dataclasses import asdict, dataclass

from ..config import LLMConfig, PathsConfig, SandboxConfig
from ..exceptions import LLMError
from ..llm import LLMClient

MARKS = {"ok": "✓", "warn": "!", "fail": "✗"}


@dataclass
class Check:
    name: str
    status: str  # "ok" | "warn" | "fail"
    detail: str
    fix: str = ""

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


def _with_tag(name: str) -> str:
    return name if ":" in name else name + ":latest"


async def check_ollama(config: LLMConfig, paths: PathsConfig) -> list[Check]:
    async with LLMClient(config.probe(10.0), paths=paths) as client:
        try:
            version = await client.version()
            pulled = set(await client.list_models())
        except LLMError as exc:
            return [
                Check(
                    "ollama",
                    "fail",
                    f"no Ollama server answers at {config.host} ({exc.__class__.__name__})",
                    "start it with `ollama serve`, or set OLLAMA_HOST to where it runs",
                )
            ]
    checks = [Check("ollama", "ok", f"Ollama {version} at {config.host}")]
    wanted = {
        "model": config.model,
        "classifier_model": config.model_for("classify"),
        "coder_model": config.model_for("code"),
        "embedding_model": config.embedding_model,
    }
    for role, name in wanted.items():
        if _with_tag(name) in pulled:
            checks.append(Check(f"model {name}", "ok", f"{role} is pulled"))
        else:
            checks.append(Check(f"model {name}", "fail", f"{role} {name!r} is not pulled", f"ollama pull {name}"))
    return checks


def check_tavily() -> Check:
    if os.environ.get("TAVILY_API_KEY"):
        return Check("tavily", "ok", "TAVILY_API_KEY is set (web search available)")
    return Check(
        "tavily",
        "warn",
        "TAVILY_API_KEY is not set: web search is unavailable, everything else works",
        "get a key at tavily.com and `export TAVILY_API_KEY=...` before starting Jupyter",
    )


def check_data_root(paths: PathsConfig) -> Check:
    root = paths.root
    try:
        root.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=root, prefix=".doctor-"):
            pass
    except OSError as exc:
        return Check(
            "data root",
            "fail",
            f"{root} is not writable ({exc.strerror or exc})",
            "set LLM_AGENT_DATA_ROOT or PathsConfig.data_root to a writable folder",
        )
    return Check("data root", "ok", f"{root} is writable")


def check_sandbox(config: SandboxConfig) -> list[Check]:
    from ..sandbox.isolation import analysis_imports, probe

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
        Check(f"sandbox {name}", "ok" if c.ok else "warn", c.detail, "" if c.ok else c.fix)
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
    checks.append(Check("sandbox isolation", level_status,
                        "; ".join([f"level in force: {report.level}", boundary, *report.notes]), fix))
    imports = analysis_imports(config)
    missing = sorted(name for name, ok in imports.items() if not ok)
    checks.append(
        Check(
            "sandbox libraries",
            "warn" if missing else "ok",
            f"missing: {', '.join(missing)}" if missing else f"can import {', '.join(sorted(imports))}",
            "pip install 'llm-agent-magic[analysis]' into the sandbox's Python" if missing else "",
        )
    )
    return checks


async def run_checks(llm: LLMConfig, sandbox: SandboxConfig, paths: PathsConfig) -> list[Check]:
    checks = await check_ollama(llm, paths)
    checks.append(check_tavily())
    checks += check_sandbox(sandbox)
    checks.append(check_data_root(paths))
    return checks


def render(checks: list[Check]) -> str:
    lines = []
    for c in checks:
        lines.append(f"{MARKS[c.status]} {c.name}: {c.detail}")
        if c.fix:
            lines.append(f"    fix: {c.fix}")
    failed = sum(c.status == "fail" for c in checks)
    lines.append(f"\n{failed} problem(s) to fix." if failed else "\nAll required checks passed.")
    return "\n".join(lines)
