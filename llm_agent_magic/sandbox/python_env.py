"""The sandbox's Python (the user's choice) and the environment it gets."""

from __future__ import annotations

import fnmatch
import functools
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass

from llm_agent_magic.config import SandboxConfig
from llm_agent_magic.exceptions import ConfigurationError

#: Removed whatever the patterns say: the agent's own credentials.
ALWAYS_SCRUB = ("TAVILY_API_KEY", "JUPYTER_TOKEN", "JPY_API_TOKEN", "JUPYTERHUB_API_TOKEN", "OLLAMA_API_KEY")
#: What the sandbox inherits from this process's environment (names or glob patterns), besides
#: ``SandboxConfig.pass_env``: locale, time zone, where programs are, who the user is, thread counts.
BASE_ENV = (
    "LANG",
    "LANGUAGE",
    "LC_*",
    "TZ",
    "TERM",
    "PATH",
    "USER",
    "LOGNAME",
    "LD_LIBRARY_PATH",
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "NUMEXPR_MAX_THREADS",
    "NO_COLOR",
)


@dataclass(frozen=True)
class PythonRuntime:
    """The interpreter that runs the sandbox kernel and the folders it needs to see."""

    executable: str
    roots: tuple[str, ...]
    user_site: str = ""
    env: tuple[tuple[str, str], ...] = ()


# Run with -I, as the sandbox kernel is: its own folders only (no PYTHONPATH, no current folder, no user site).
_INFO_SCRIPT = (
    "import json, os, site, sys\n"
    "roots = [sys.prefix, sys.base_prefix, sys.exec_prefix, os.path.dirname(os.path.realpath(sys.executable)),"
    " os.path.dirname(sys.executable)] + [p for p in sys.path if p and os.path.isdir(p)]\n"
    "user = site.getusersitepackages()\n"
    "print(json.dumps({'roots': roots, 'user_site': user if os.path.isdir(user) else ''}))\n"
)


@functools.lru_cache(maxsize=8)
def _python_info(executable: str) -> tuple[tuple[str, ...], str]:
    try:
        out = subprocess.run(
            [executable, "-I", "-c", _INFO_SCRIPT], capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL
        )
        info = json.loads(out.stdout.strip().splitlines()[-1])
    except (OSError, subprocess.TimeoutExpired, ValueError, IndexError) as exc:
        raise ConfigurationError(
            f"Could not run the sandbox's Python {executable!r} ({exc}). Point SandboxConfig.python at a working "
            f"interpreter that has ipykernel, or leave it empty to use this environment's Python."
        ) from exc
    return tuple(info["roots"]), info["user_site"]


def sandbox_python(config: SandboxConfig) -> PythonRuntime:
    """The interpreter chosen in config: ``python``, else ``kernel_name``'s, else this environment's."""
    env: dict[str, str] = {}
    if config.python:
        executable = shutil.which(config.python) or config.python
    elif config.kernel_name:
        executable, env = _python_of_kernelspec(config.kernel_name)
    else:
        executable = sys.executable
    # Asked of the interpreter itself, never taken from this process's sys.path (which holds the current
    # folder, PYTHONPATH and whatever else this process added).
    roots, user_site = _python_info(executable)
    if sys.flags.no_user_site or not _user_site_enabled():
        user_site = ""
    return PythonRuntime(executable, tuple(dict.fromkeys(roots)), user_site, tuple(sorted(env.items())))


def _user_site_enabled() -> bool:
    import site

    return bool(site.ENABLE_USER_SITE) and not os.environ.get("PYTHONNOUSERSITE")


def _python_of_kernelspec(name: str) -> tuple[str, dict[str, str]]:
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        spec = KernelSpecManager().get_kernel_spec(name)
    except NoSuchKernel as exc:
        raise ConfigurationError(
            f"No kernel spec named {name!r} (SandboxConfig.kernel_name). `jupyter kernelspec list` shows the "
            f"installed ones; or set SandboxConfig.python to an interpreter instead."
        ) from exc
    argv = spec.argv
    if spec.language.lower() != "python" or not any("ipykernel" in a for a in argv):
        raise ConfigurationError(
            f"Kernel spec {name!r} is not an ipykernel (Python) kernel: {argv!r}. The sandbox runs generated Python "
            f"code with ipykernel; choose a Python kernel spec or set SandboxConfig.python."
        )
    return shutil.which(argv[0]) or argv[0], dict(spec.env or {})


def sandbox_env(env: dict[str, str], config: SandboxConfig) -> dict[str, str]:
    """What the sandbox inherits of ``env``: the allowlist (``BASE_ENV`` + ``pass_env``), then scrubbed."""
    allowed = [p.upper() for p in (*BASE_ENV, *config.pass_env)]
    kept = {k: v for k, v in env.items() if any(fnmatch.fnmatchcase(k.upper(), p) for p in allowed)}
    return scrub_env(kept, config.scrub_env_patterns)


def scrub_env(env: dict[str, str], patterns: list[str] | tuple[str, ...]) -> dict[str, str]:
    """A copy of ``env`` without credentials: ALWAYS_SCRUB names and names matching ``patterns`` (any case)."""
    upper = [p.upper() for p in patterns]
    return {k: v for k, v in env.items() if k not in ALWAYS_SCRUB and not any(fnmatch.fnmatchcase(k.upper(), p) for p in upper)}
