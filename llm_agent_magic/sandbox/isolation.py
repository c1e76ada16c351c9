"""Isolation layers of the sandbox kernel, and the probe ``llm-agent doctor`` calls.

Layers, outermost first:

* ``full``: bubblewrap (read-only system and project, writable workspace, private /tmp,
  no network, own PID/IPC/UTS namespaces, dies with its parent) + everything below;
* ``reduced``: resource limits + scrubbed environment + the audit hook (``policy.py``);
* ``off``: none of them (explicit configuration only).

The kernel talks to its parent over unix sockets (jupyter_client's ``ipc`` transport),
which work across network namespaces because they are files.
"""

from __future__ import annotations

import fnmatch
import functools
import json
import os
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from llm_agent_magic.config import PathsConfig, SandboxConfig
from llm_agent_magic.exceptions import ConfigurationError, SandboxUnavailable

from .paths import SessionPaths

HERE = Path(__file__).resolve().parent
LAUNCHER = HERE / "launcher.py"
ANALYSIS_MODULES = ("matplotlib", "seaborn", "scipy", "sklearn", "statsmodels", "openpyxl", "pandas", "numpy", "pyarrow")
#: Removed whatever the patterns say: the agent's own credentials.
ALWAYS_SCRUB = ("TAVILY_API_KEY", "JUPYTER_TOKEN", "JPY_API_TOKEN", "JUPYTERHUB_API_TOKEN", "OLLAMA_API_KEY")
#: Places in a home folder that hold credentials; hidden even when the home folder is the project.
SECRET_HOME_ENTRIES = (
    ".ssh", ".aws", ".azure", ".gnupg", ".netrc", ".kube", ".docker", ".git-credentials", ".pypirc",
    ".password-store", ".config/gcloud", ".config/gh", ".jupyter", ".local/share/jupyter/runtime",
    ".bash_history", ".python_history", ".ipython",
)
SECRET_ETC_FILES = ("/etc/shadow", "/etc/shadow-", "/etc/gshadow", "/etc/gshadow-", "/etc/sudoers", "/etc/ssh")
SANDBOX_UID = 1000
_SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/opt", "/sys")


@dataclass
class Check:
    """One isolation capability: whether it works, what was seen, and how to fix it if not."""

    ok: bool
    detail: str
    fix: str = ""


@dataclass
class IsolationReport:
    """What ``probe`` found: the level that will be used and each layer's state."""

    level: str
    requested: str
    bubblewrap: Check
    user_namespaces: Check
    rlimits: Check
    audit_hook: Check
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --- probes -----------------------------------------------------------------------------------------


def _bwrap() -> str | None:
    return shutil.which("bwrap")


def _run_quiet(argv: list[str], timeout: float = 10.0) -> tuple[int, str]:
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return 1, str(exc)
    return proc.returncode, (proc.stderr or proc.stdout).strip()


@functools.lru_cache(maxsize=1)
def user_namespace_check() -> Check:
    """Can this user create user namespaces (what unprivileged bubblewrap needs)?"""
    bwrap = _bwrap()
    if bwrap is None:
        return Check(False, "cannot test without bubblewrap", "apt-get install bubblewrap")
    code, err = _run_quiet([bwrap, "--unshare-user", "--ro-bind", "/", "/", "true"])
    if code == 0:
        return Check(True, "user namespaces work")
    return Check(
        False,
        f"bwrap --unshare-user failed: {err[:200]}",
        "allow unprivileged user namespaces: `sysctl -w kernel.unprivileged_userns_clone=1` "
        "(Debian/Ubuntu; on Ubuntu 24.04 also `sysctl -w kernel.apparmor_restrict_unprivileged_userns=0`), "
        "or `sysctl -w user.max_user_namespaces=10000`; in a container, run it with --privileged or a seccomp "
        "profile that allows unshare",
    )


def _user_flags() -> list[str]:
    if os.geteuid() == 0:
        # Root keeps every capability inside bwrap unless told otherwise; an unprivileged uid in a user
        # namespace has none. Without user namespaces, drop the capabilities explicitly.
        if user_namespace_check().ok:
            return ["--unshare-user", "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID)]
        return ["--cap-drop", "ALL"]
    return ["--unshare-user"]


def _namespace_flags(allow_network: bool) -> list[str]:
    flags = ["--die-with-parent", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try"]
    if not allow_network:
        flags.append("--unshare-net")
    return flags + _user_flags()


@functools.lru_cache(maxsize=2)
def bubblewrap_check(allow_network: bool = False) -> Check:
    """Does bubblewrap start a process with the namespaces the sandbox uses?"""
    bwrap = _bwrap()
    if bwrap is None:
        return Check(False, "bubblewrap (bwrap) is not installed", "apt-get install bubblewrap (or dnf install bubblewrap)")
    argv = [bwrap, *_namespace_flags(allow_network), "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "true"]
    code, err = _run_quiet(argv)
    if code == 0:
        return Check(True, f"{bwrap} works with PID, network and IPC namespaces")
    return Check(
        False,
        f"{bwrap} is installed but could not create namespaces: {err[:300]}",
        "allow unprivileged user namespaces (see user_namespaces), or make bwrap setuid "
        "(`chmod u+s $(which bwrap)`); in Docker, run the container with --privileged or --security-opt "
        "seccomp=unconfined",
    )


def rlimits_check() -> Check:
    try:
        import resource

        resource.getrlimit(resource.RLIMIT_AS)
    except (ImportError, OSError, ValueError) as exc:
        return Check(False, f"resource limits are not available: {exc}", "run on Linux or macOS")
    if os.geteuid() == 0:
        return Check(
            True,
            "memory, CPU time, file size and open files are limited; the process limit is not enforced for root, "
            "so process creation is refused by the audit hook and contained by the PID namespace",
        )
    return Check(True, "memory, CPU time, processes, file size and open files are limited")


def resolve_level(config: SandboxConfig) -> str:
    """The isolation level that will be used: ``auto`` becomes ``full`` when bubblewrap works."""
    requested = config.isolation
    if requested in ("off", "reduced"):
        return requested
    check = bubblewrap_check(bool(config.allow_network))
    if requested == "full" and not check.ok:
        raise SandboxUnavailable("full", check.detail, check.fix)
    return "full" if check.ok else "reduced"


def probe(config: SandboxConfig | None = None) -> IsolationReport:
    """Check each isolation layer on this machine (for ``llm-agent doctor``)."""
    config = config or SandboxConfig()
    bwrap = bubblewrap_check(bool(config.allow_network))
    level = "full" if (config.isolation in ("auto", "full") and bwrap.ok) else config.isolation
    if level == "auto":
        level = "reduced"
    notes = []
    if config.isolation == "full" and not bwrap.ok:
        notes.append("isolation 'full' was asked for but bubblewrap does not work: the sandbox will not start")
    if level == "reduced":
        notes.append("without bubblewrap the audit hook is the only file and network guard; C extensions can bypass it")
    if level == "off":
        notes.append("isolation is off: generated code runs with your permissions, network and environment")
    hook = Check(level != "off", "audit hook refuses processes, network, native code and writes outside the workspace"
                 if level != "off" else "disabled (isolation 'off')", "" if level != "off" else
                 "set SandboxConfig.isolation = 'auto'")
    return IsolationReport(
        level=level,
        requested=config.isolation,
        bubblewrap=bwrap,
        user_namespaces=user_namespace_check(),
        rlimits=rlimits_check(),
        audit_hook=hook,
        notes=notes,
    )


def analysis_imports(config: SandboxConfig | None = None, modules: tuple[str, ...] = ANALYSIS_MODULES) -> dict[str, bool]:
    """Which analysis libraries the sandbox's Python can import (runs that Python once)."""
    runtime = sandbox_python(config or SandboxConfig())
    script = (
        "import importlib, json, sys\n"
        "ok = {}\n"
        f"for name in {list(modules)!r}:\n"
        "    try:\n"
        "        importlib.import_module(name); ok[name] = True\n"
        "    except Exception:\n"
        "        ok[name] = False\n"
        "print(json.dumps(ok))\n"
    )
    env = scrub_env(dict(os.environ), (config or SandboxConfig()).scrub_env_patterns)
    env["MPLBACKEND"] = "Agg"
    try:
        proc = subprocess.run([runtime.executable, "-c", script], capture_output=True, text=True, timeout=300, env=env,
                              stdin=subprocess.DEVNULL)
        found = json.loads(proc.stdout.strip().splitlines()[-1])
    except (OSError, subprocess.TimeoutExpired, ValueError, IndexError):
        found = {}
    return {name: bool(found.get(name, False)) for name in modules}


# --- the sandbox's Python --------------------------------------------------------------------------


@dataclass(frozen=True)
class PythonRuntime:
    """The interpreter that runs the sandbox kernel and the folders it needs to see."""

    executable: str
    roots: tuple[str, ...]
    user_site: str = ""
    env: tuple[tuple[str, str], ...] = ()


_INFO_SCRIPT = (
    "import json, os, site, sys\n"
    "roots = [sys.prefix, sys.base_prefix, sys.exec_prefix, os.path.dirname(os.path.realpath(sys.executable)),"
    " os.path.dirname(sys.executable)] + [p for p in sys.path if p and os.path.isdir(p)]\n"
    "user = site.getusersitepackages() if site.ENABLE_USER_SITE else ''\n"
    "print(json.dumps({'roots': roots, 'user_site': user if os.path.isdir(user) else ''}))\n"
)


@functools.lru_cache(maxsize=8)
def _python_info(executable: str) -> tuple[tuple[str, ...], str]:
    try:
        out = subprocess.run([executable, "-c", _INFO_SCRIPT], capture_output=True, text=True, timeout=60,
                             stdin=subprocess.DEVNULL, env={**os.environ, "PYTHONNOUSERSITE": ""})
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
    if os.path.realpath(executable) == os.path.realpath(sys.executable) and executable == sys.executable:
        roots = [sys.prefix, sys.base_prefix, sys.exec_prefix, os.path.dirname(os.path.realpath(sys.executable)),
                 os.path.dirname(sys.executable)] + [p for p in sys.path if p and os.path.isdir(p)]
        import site

        user = site.getusersitepackages() if site.ENABLE_USER_SITE else ""
        user_site = user if os.path.isdir(user) else ""
    else:
        roots_t, user_site = _python_info(executable)
        roots = list(roots_t)
    return PythonRuntime(executable, tuple(dict.fromkeys(roots)), user_site, tuple(sorted(env.items())))


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


# --- launching ----------------------------------------------------------------------------------------


def scrub_env(env: dict[str, str], patterns: list[str] | tuple[str, ...]) -> dict[str, str]:
    """A copy of ``env`` without credentials: ALWAYS_SCRUB names and names matching ``patterns`` (any case)."""
    upper = [p.upper() for p in patterns]
    return {
        k: v
        for k, v in env.items()
        if k not in ALWAYS_SCRUB and not any(fnmatch.fnmatchcase(k.upper(), p) for p in upper)
    }


@dataclass
class LaunchPlan:
    """Everything needed to start one sandbox kernel: its argv (before the connection-file options), env, policy."""

    level: str
    argv: list[str]
    env: dict[str, str]
    policy: dict[str, Any]


def _real(path: str | os.PathLike[str]) -> str:
    return os.path.realpath(os.fspath(path))


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def project_dir(config: SandboxConfig, paths: SessionPaths) -> str:
    return _real(os.path.expanduser(config.project_dir)) if config.project_dir else _real(paths.data_root.parent)


def _secret_paths(home: str) -> list[str]:
    found = [os.path.join(home, e) for e in SECRET_HOME_ENTRIES]
    try:
        from jupyter_core.paths import jupyter_runtime_dir

        found.append(_real(jupyter_runtime_dir()))
    except Exception:
        pass
    return found


def build_launch(config: SandboxConfig, paths: SessionPaths, level: str, runtime: PythonRuntime) -> LaunchPlan:
    """Plan the launch of ``paths``' kernel at ``level``."""
    home = _real(os.path.expanduser("~"))
    project = project_dir(config, paths)
    run = paths.run
    ipc = _real(paths.ipc_dir)
    python_roots = [r for r in dict.fromkeys(_real(r) for r in runtime.roots) if r != "/"]
    python_roots += [r for r in dict.fromkeys(runtime.roots) if r != "/" and os.path.islink(r)]
    extra = [_real(os.path.expanduser(p)) for p in config.extra_ro_binds]
    user_site = [_real(runtime.user_site)] if runtime.user_site else []
    data_root = _real(paths.data_root)
    session = _real(paths.root)
    secrets = _secret_paths(home)
    ipc_base = _real(SessionPaths.ipc_base())

    env = scrub_env(dict(os.environ), config.scrub_env_patterns)
    env.update(scrub_env(dict(runtime.env), config.scrub_env_patterns))
    env.pop("JPY_PARENT_PID", None)
    make_dirs = [str(run / d) for d in ("home", "mpl", "ipython", "cache", "config")]
    if level != "off":
        env.update(
            HOME=str(run / "home"),
            MPLCONFIGDIR=str(run / "mpl"),
            IPYTHONDIR=str(run / "ipython"),
            XDG_CACHE_HOME=str(run / "cache"),
            XDG_CONFIG_HOME=str(run / "config"),
            # glibc reserves 64 MB of address space per thread arena; the address-space limit would feel it.
            MALLOC_ARENA_MAX="2",
            PYDEVD_DISABLE_FILE_VALIDATION="1",
            # joblib/loky would run `cat /proc/cpuinfo` to count cores (refused) and warn about it.
            LOKY_MAX_CPU_COUNT=str(os.cpu_count() or 1),
        )
        if user_site:  # HOME moved, so Python would no longer find the user's own site-packages
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [env.get("PYTHONPATH", ""), user_site[0]]))
    env["LLM_AGENT_SANDBOX"] = level
    if level == "full":
        env["TMPDIR"] = "/tmp"

    limits: dict[str, int] = {}
    if level != "off":
        limits = {
            "as": config.memory_limit_mb * 2**20,
            "cpu": config.cpu_time_limit,
            "fsize": config.max_file_size_mb * 2**20,
            "nofile": config.max_open_files,
            "core": 0,
        }
        if os.geteuid() != 0 and level == "full":
            # Inside its own user namespace the sandbox counts only its own processes. Outside one, the limit
            # counts every process of the user, so in 'reduced' it would stop the kernel starting threads.
            limits["nproc"] = config.max_processes

    trusted = [r for r in python_roots + [str(HERE)] if not any(_inside(d, r) for d in (home, data_root))]
    read_rules: list[tuple[str, bool]] = [(home, False), (data_root, False), (ipc_base, False)]
    read_rules += [(r, True) for r in python_roots + user_site + [project, str(HERE)] + extra]
    read_rules += [(session, True), (ipc, True)]
    read_rules += [(_real(s), False) for s in secrets]
    read_rules += [(paths.kernel.as_posix(), True)]
    tmp_roots = ["/tmp", "/var/tmp", "/dev/shm"] if level == "reduced" else ["/tmp", "/var/tmp"]
    policy = {
        "level": level,
        "limits": limits,
        "make_dirs": make_dirs,
        "snapshots": str(paths.snapshots),
        "preload": list(config.preload_modules),
        "audit_hook": level != "off",
        "audit": {
            "workspace": str(paths.workspace),
            "write_rules": [[p, True] for p in tmp_roots]
            + [[p, False] for p in python_roots + user_site + [project, str(HERE), home, data_root] + extra]
            + [[_real(p), True] for p in (paths.workspace, paths.snapshots, run)] + [[ipc, True]],
            "write_files": ["/dev/null"],
            "read_rules": [[_real(p), a] for p, a in read_rules],
            "trusted_read_roots": trusted,
            "allow_network": bool(config.allow_network),
            "guard_proc": level == "reduced",
        },
    }

    argv = [runtime.executable, str(LAUNCHER), "--policy", str(paths.kernel / "policy.json")]
    if level == "full":
        bwrap = _bwrap()
        assert bwrap is not None
        binds = _bwrap_binds(
            ro=python_roots + user_site + [project, str(HERE)] + extra,
            paths=paths,
            ipc=ipc,
            secrets=secrets,
        )
        argv = [bwrap, *_namespace_flags(bool(config.allow_network)), *binds, "--unsetenv", "JPY_PARENT_PID",
                "--chdir", str(paths.workspace), "--", *argv]
    return LaunchPlan(level=level, argv=argv, env=env, policy=policy)


def _bwrap_binds(ro: list[str], paths: SessionPaths, ipc: str, secrets: list[str]) -> list[str]:
    args: list[str] = []
    for d in _SYSTEM_DIRS:
        if os.path.islink(d):
            args += ["--symlink", os.readlink(d), d]
        elif os.path.isdir(d):
            args += ["--ro-bind", d, d]
    for f in SECRET_ETC_FILES:
        if os.path.isdir(f):
            args += ["--tmpfs", f]
        elif os.path.exists(f):
            args += ["--ro-bind", "/dev/null", f]
    args += ["--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp", "--tmpfs", "/var/tmp"]
    bound: list[str] = []
    for root in sorted(dict.fromkeys(ro), key=len):
        if not os.path.exists(root) or any(_inside(root, b) for b in bound + ["/usr"]):
            continue
        args += ["--ro-bind", root, root]
        bound.append(root)
    # Hide the rest of the data root (other sessions, the conversation store, logs), then show this session:
    # read-only as a whole, writable where the kernel may write.
    data_root = _real(paths.data_root)
    args += ["--tmpfs", data_root, "--ro-bind", _real(paths.root), _real(paths.root)]
    for rw in (paths.workspace, paths.snapshots, paths.run):
        args += ["--bind", _real(rw), _real(rw)]
    if not _inside(ipc, _real(paths.run)):
        args += ["--bind", ipc, ipc]
    for secret in secrets:
        if os.path.exists(secret) and any(_inside(_real(secret), b) for b in bound):
            args += ["--tmpfs", _real(secret)] if os.path.isdir(secret) else ["--ro-bind", "/dev/null", _real(secret)]
    return args
