"""The plan of one sandbox kernel launch, made in the parent at a given isolation level: argv
(bubblewrap around ``inside/entrypoint.py`` at 'full'), environment, the policy the entry point
applies inside, and the folders each launch starts from.

Nothing the sandbox can write may change how the next kernel starts: the interpreter runs isolated
(``python -I``: no PYTHONPATH, PYTHONSTARTUP, user site-packages or current folder), the IPython and
Jupyter config folders are made fresh for each launch where the sandbox cannot write, and its
scratch folders (HOME, caches, matplotlib's config, TMPDIR) are emptied before each launch.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llm_agent_magic import atomic
from llm_agent_magic.config import SandboxConfig

from .isolation import Layers, bwrap_path, namespace_flags
from .mounts import PRIVATE_TMP, build_view, bwrap_args, inside, landlock_rules, real, writable_tmp
from .paths import SessionPaths
from .python_env import PythonRuntime, sandbox_env, scrub_env

#: The sandbox package's folder, readable inside the sandbox: it holds ``inside/``, what runs there.
HERE = Path(__file__).resolve().parent
ENTRYPOINT = HERE / "inside" / "entrypoint.py"
#: Scratch folders of ``run/`` the sandbox writes; emptied before every launch.
SCRATCH = ("home", "cache", "config", "mpl", "tmp", "runtime")
# Earlier versions kept IPython's folder in run/, where the sandbox could plant startup files.
_STALE = ("ipython",)


@dataclass
class LaunchPlan:
    """Everything needed to start one sandbox kernel: its argv (before the connection-file options), env, policy."""

    level: str
    argv: list[str]
    env: dict[str, str]
    policy: dict[str, Any]


def project_dir(config: SandboxConfig, paths: SessionPaths) -> str:
    return real(os.path.expanduser(config.project_dir)) if config.project_dir else real(paths.data_root.parent)


def tmp_sizes(config: SandboxConfig) -> dict[str, int]:
    """Bytes each memory-backed tmpfs of bubblewrap may hold: together ``tmp_size_mb`` (or a quarter of memory)."""
    total = (config.tmp_size_mb or max(config.memory_limit_mb // 4, 16)) * 2**20
    return {"/tmp": total // 2, "/var/tmp": total // 4, "/dev/shm": total // 4}


def prepare_launch(paths: SessionPaths) -> None:
    """Empty the sandbox's scratch folders and make the launch folder afresh (called with no kernel running)."""
    for name in SCRATCH + _STALE:
        _remove(paths.run / name)
    for name in SCRATCH:
        (paths.run / name).mkdir(mode=0o700)
    launch = paths.launch_dir
    _remove(launch)
    for sub in (
        "ipython/profile_default/startup",
        "ipython/profile_default/security",
        "ipython/profile_default/log",
        "ipython/profile_default/pid",
        "jupyter/config",
        "jupyter/data",
    ):
        (launch / sub).mkdir(parents=True, mode=0o755)
    atomic.write_text(launch / "matplotlibrc", "# llm-agent sandbox: matplotlib defaults\n", mode=0o666)


def _remove(path: Path) -> None:
    # The sandbox may have replaced a folder with a link: remove the link, never what it points to.
    if path.is_symlink() or (path.exists() and not path.is_dir()):
        path.unlink()
    elif path.exists():
        shutil.rmtree(path)


def build_launch(
    config: SandboxConfig, paths: SessionPaths, layers: Layers, runtime: PythonRuntime, connection_file: Path
) -> LaunchPlan:
    """Plan the launch of ``paths``' kernel with ``layers``, connected through ``connection_file``."""
    level = layers.level
    home = real(os.path.expanduser("~"))
    project = project_dir(config, paths)
    run, launch = paths.run, paths.launch_dir
    python_roots = [r for r in dict.fromkeys(real(r) for r in runtime.roots) if r != "/"]
    python_roots += [r for r in dict.fromkeys(runtime.roots) if r != "/" and os.path.islink(r)]
    extra = [real(os.path.expanduser(p)) for p in config.extra_ro_binds]
    user_site = [real(runtime.user_site)] if runtime.user_site else []
    spec_path = [real(p) for p in dict(runtime.env).get("PYTHONPATH", "").split(os.pathsep) if p.startswith("/")]
    data_root = real(paths.data_root)
    session = real(paths.root)
    ipc = real(paths.ipc_dir)
    ipc_base = real(SessionPaths.ipc_base())
    writable = [real(p) for p in (paths.workspace, paths.snapshots, run)] + [ipc]
    spec_path = [p for p in spec_path if not any(inside(p, w) for w in writable)]

    if level == "off":
        env = scrub_env(dict(os.environ), config.scrub_env_patterns)
    else:
        env = sandbox_env(dict(os.environ), config)
    env.update(scrub_env(dict(runtime.env), config.scrub_env_patterns))
    env.pop("JPY_PARENT_PID", None)
    if level != "off":
        env.update(
            HOME=str(run / "home"),
            XDG_CACHE_HOME=str(run / "cache"),
            XDG_CONFIG_HOME=str(run / "config"),
            MPLCONFIGDIR=str(run / "mpl"),
            MATPLOTLIBRC=str(launch / "matplotlibrc"),
            IPYTHONDIR=str(launch / "ipython"),
            JUPYTER_CONFIG_DIR=str(launch / "jupyter" / "config"),
            JUPYTER_DATA_DIR=str(launch / "jupyter" / "data"),
            JUPYTER_RUNTIME_DIR=str(run / "runtime"),
            # glibc reserves 64 MB of address space per thread arena; the address-space limit would feel it.
            MALLOC_ARENA_MAX="2",
            PYDEVD_DISABLE_FILE_VALIDATION="1",
            # joblib/loky would run `cat /proc/cpuinfo` to count cores (refused) and warn about it.
            LOKY_MAX_CPU_COUNT=str(os.cpu_count() or 1),
        )
    env["LLM_AGENT_SANDBOX"] = level

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

    readable = python_roots + user_site + spec_path + [project, str(HERE)] + extra
    view = build_view(
        paths,
        readable,
        keep=python_roots + user_site + spec_path + [str(HERE), project] + extra,
        hide_dotfiles=config.hide_home_dotfiles,
        private_tmp=level == "full",
        tmp_sizes=tmp_sizes(config),
        launch_dir=real(launch),
        connection_file=os.path.join(real(paths.kernel), connection_file.name),
    )
    tmp_roots = writable_tmp(view)
    if level != "off":
        env["TMPDIR"] = "/tmp" if "/tmp" in tmp_roots else str(run / "tmp")
    trusted = [r for r in python_roots + [str(HERE)] if not any(inside(r, d) for d in view.hidden + [home])]
    # The longest matching prefix decides; on a tie the earlier rule wins, so a project folder that *is*
    # the home folder stays readable while what is hidden inside it (longer paths) is not.
    read_rules: list[tuple[str, bool]] = [(r, True) for r in readable]
    read_rules += [(r, True) for r in view.keep]
    read_rules += [(session, True), (ipc, True)]
    read_rules += [(home, False), (data_root, False), (ipc_base, False)]
    read_rules += [(h, False) for h in view.hidden]
    if level == "reduced":
        read_rules += [(t, False) for t in PRIVATE_TMP]  # the host's shared temporary folders
    policy = {
        "level": level,
        "limits": limits,
        "snapshots": str(paths.snapshots),
        "workspace": str(paths.workspace),
        "start_dir": str(launch),
        "user_site": user_site[0] if user_site else "",
        "sys_path": spec_path,
        "preload": list(config.preload_modules),
        "audit_hook": level != "off",
        "seccomp": layers.seccomp,
        "drop_capabilities": level != "off",
        # Without network: unix sockets, and TCP ones only where Landlock refuses their connect and bind.
        "sockets": "all" if config.allow_network else "stream" if layers.landlock >= 4 else "unix",
        "landlock": landlock_rules(view, bool(config.allow_network)) if layers.landlock else None,
        "audit": {
            "workspace": str(paths.workspace),
            "write_rules": [[p, True] for p in tmp_roots]
            + [[p, False] for p in readable + [home, data_root]]
            + [[w, True] for w in writable],
            "write_files": ["/dev/null"],
            "read_rules": [[real(p), a] for p, a in read_rules],
            "trusted_read_roots": trusted,
            "allow_network": bool(config.allow_network),
            "guard_proc": level == "reduced",
        },
    }

    python = [runtime.executable] if level == "off" else [runtime.executable, "-I"]
    argv = [*python, str(ENTRYPOINT), "--policy", str(paths.kernel / "policy.json")]
    if level == "full":
        bwrap = bwrap_path()
        assert bwrap is not None
        argv = [
            bwrap,
            *namespace_flags(bool(config.allow_network)),
            *bwrap_args(view),
            "--unsetenv",
            "JPY_PARENT_PID",
            "--chdir",
            str(paths.workspace),
            "--",
            *argv,
        ]
    return LaunchPlan(level=level, argv=argv, env=env, policy=policy)
