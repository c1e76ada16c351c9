"""How one sandbox kernel is launched at a given isolation level: argv (bubblewrap around the
launcher at 'full'), environment, and the policy the launcher applies inside."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llm_agent_magic.config import SandboxConfig

from .isolation import bwrap_path, namespace_flags
from .paths import SessionPaths
from .python_env import PythonRuntime, scrub_env
from .seccomp import supported as seccomp_supported

HERE = Path(__file__).resolve().parent
LAUNCHER = HERE / "launcher.py"
#: Places in a home folder that hold credentials; hidden even when the home folder is the project.
SECRET_HOME_ENTRIES = (
    ".ssh", ".aws", ".azure", ".gnupg", ".netrc", ".kube", ".docker", ".git-credentials", ".pypirc",
    ".password-store", ".config/gcloud", ".config/gh", ".jupyter", ".local/share/jupyter/runtime",
    ".bash_history", ".python_history", ".ipython",
)
SECRET_ETC_FILES = ("/etc/shadow", "/etc/shadow-", "/etc/gshadow", "/etc/gshadow-", "/etc/sudoers", "/etc/ssh")
_SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/opt", "/sys")


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
    # The longest matching prefix decides; on a tie the earlier rule wins, so a project folder that *is*
    # the home folder stays readable while the credentials inside it (longer paths) do not.
    read_rules: list[tuple[str, bool]] = [(r, True) for r in python_roots + user_site + [project, str(HERE)] + extra]
    read_rules += [(session, True), (ipc, True)]
    read_rules += [(home, False), (data_root, False), (ipc_base, False)]
    read_rules += [(_real(s), False) for s in secrets]
    tmp_roots = ["/tmp", "/var/tmp", "/dev/shm"] if level == "reduced" else ["/tmp", "/var/tmp"]
    policy = {
        "level": level,
        "limits": limits,
        "make_dirs": make_dirs,
        "snapshots": str(paths.snapshots),
        "preload": list(config.preload_modules),
        "audit_hook": level != "off",
        "seccomp": level != "off" and seccomp_supported(),
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
        bwrap = bwrap_path()
        assert bwrap is not None
        binds = _bwrap_binds(
            ro=python_roots + user_site + [project, str(HERE)] + extra,
            paths=paths,
            ipc=ipc,
            secrets=secrets,
        )
        argv = [bwrap, *namespace_flags(bool(config.allow_network)), *binds, "--unsetenv", "JPY_PARENT_PID",
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
