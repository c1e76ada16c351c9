"""Isolation layers of the sandbox kernel, and the probe ``llm-agent doctor`` calls.

Layers, outermost first:

* ``full``: bubblewrap (read-only system and project, writable workspace, private /tmp,
  no network, own PID/IPC/UTS namespaces, dies with its parent) + everything below;
* ``reduced``: Landlock (``inside/landlock.py``: the kernel limits reads to the system, the sandbox's Python
  and the project, writes to the session's folders, and refuses TCP) + resource limits + a seccomp
  filter refusing new processes (``inside/seccomp.py``) + an allowlisted environment + the audit hook
  (``inside/audit_hook.py``). Without Landlock it runs only if the user opts in (``allow_unenforced``);
* ``off``: none of them (explicit configuration only).

The audit hook is a guide with friendly messages, not a wall: code can switch it off from pure Python.
What holds is what the operating system enforces: bubblewrap, Landlock, seccomp and the limits.

The kernel talks to its parent over unix sockets (jupyter_client's ``ipc`` transport),
which work across network namespaces because they are files.
"""

from __future__ import annotations

import functools
import json
import os
import platform
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from typing import Any

from llm_agent_magic.config import SandboxConfig
from llm_agent_magic.exceptions import SandboxUnavailable

from .python_env import sandbox_python, scrub_env

ANALYSIS_MODULES = ("matplotlib", "seaborn", "scipy", "sklearn", "statsmodels", "openpyxl", "pandas", "numpy", "pyarrow")
SANDBOX_UID = 1000


@dataclass
class LayerCheck:
    """One isolation capability: whether it works, what was seen, and how to fix it if not."""

    ok: bool
    detail: str
    fix: str = ""


@dataclass
class IsolationReport:
    """What ``probe`` found: the level that will be used and each layer's state."""

    level: str
    requested: str
    bubblewrap: LayerCheck
    user_namespaces: LayerCheck
    landlock: LayerCheck
    rlimits: LayerCheck
    seccomp: LayerCheck
    audit_hook: LayerCheck
    enforced_by: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Layers:
    """The isolation layers one kernel launch gets."""

    level: str
    bubblewrap: bool = False
    landlock: int = 0  # the Landlock ABI in use; 0: none
    seccomp: bool = False

    @property
    def enforced_by(self) -> list[str]:
        """What the operating system enforces on files and network (what code inside cannot switch off)."""
        if self.level == "gateway":
            return ["gateway"]  # whatever the gateway's kernel image, pod or container holds: not ours to check
        return (["bubblewrap"] if self.bubblewrap else []) + ([f"landlock-abi-{self.landlock}"] if self.landlock else [])

    def describe(self) -> str:
        if self.level == "off":
            return "off: no isolation"
        if self.level == "gateway":
            return (
                "gateway: what the gateway's kernel image, pod or container enforces (none of this machine's "
                "bubblewrap, Landlock, seccomp or limits) + scrubbed environment + audit hook"
            )
        parts = (["bubblewrap"] if self.bubblewrap else []) + ([f"Landlock ABI {self.landlock}"] if self.landlock else [])
        parts += (["seccomp"] if self.seccomp else []) + ["limits", "audit hook"]
        text = f"{self.level}: " + " + ".join(parts)
        return text if self.enforced_by else text + " (nothing enforced by the operating system; opted in)"

    def metadata(self) -> dict[str, Any]:
        """What every ExecutionResult says about the isolation it ran under."""
        return {
            "isolation": self.level,
            "enforced_by": self.enforced_by,
            # A gateway's kernel runs under whatever its operator set up; this process cannot vouch for it.
            "kernel_enforced": bool(self.enforced_by) and self.level != "gateway",
            "isolation_layers": self.describe(),
        }


# --- probes -----------------------------------------------------------------------------------------


def bwrap_path() -> str | None:
    return shutil.which("bwrap")


def _run_quiet(argv: list[str], timeout: float = 10.0) -> tuple[int, str]:
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return 1, str(exc)
    return proc.returncode, (proc.stderr or proc.stdout).strip()


@functools.lru_cache(maxsize=1)
def user_namespace_check() -> LayerCheck:
    """Can this user create user namespaces (what unprivileged bubblewrap needs)?"""
    bwrap = bwrap_path()
    if bwrap is None:
        return LayerCheck(False, "cannot test without bubblewrap", "apt-get install bubblewrap")
    code, err = _run_quiet([bwrap, "--unshare-user", "--ro-bind", "/", "/", "true"])
    if code == 0:
        return LayerCheck(True, "user namespaces work")
    return LayerCheck(
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


def namespace_flags(allow_network: bool) -> list[str]:
    flags = ["--die-with-parent", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try"]
    if not allow_network:
        flags.append("--unshare-net")
    return flags + _user_flags()


@functools.lru_cache(maxsize=2)
def bubblewrap_check(allow_network: bool = False) -> LayerCheck:
    """Does bubblewrap start a process with the namespaces the sandbox uses?"""
    bwrap = bwrap_path()
    if bwrap is None:
        return LayerCheck(False, "bubblewrap (bwrap) is not installed", "apt-get install bubblewrap (or dnf install bubblewrap)")
    argv = [bwrap, *namespace_flags(allow_network), "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "true"]
    code, err = _run_quiet(argv)
    if code == 0:
        return LayerCheck(True, f"{bwrap} works with PID, network and IPC namespaces")
    return LayerCheck(
        False,
        f"{bwrap} is installed but could not create namespaces: {err[:300]}",
        "allow unprivileged user namespaces (see user_namespaces), or make bwrap setuid "
        "(`chmod u+s $(which bwrap)`); in Docker, run the container with --privileged or --security-opt "
        "seccomp=unconfined",
    )


def rlimits_check() -> LayerCheck:
    try:
        import resource

        resource.getrlimit(resource.RLIMIT_AS)
    except (ImportError, OSError, ValueError) as exc:
        return LayerCheck(False, f"resource limits are not available: {exc}", "run on Linux or macOS")
    if os.geteuid() == 0:
        return LayerCheck(
            True,
            "memory, CPU time, file size and open files are limited; the process limit is not enforced for root, "
            "so new processes are refused by the seccomp filter and the audit hook instead",
        )
    return LayerCheck(True, "memory, CPU time, processes, file size and open files are limited")


@functools.lru_cache(maxsize=1)
def seccomp_check() -> LayerCheck:
    """Does the filter that refuses new processes install here (fork and exec refused, threads fine)?"""
    from .inside import seccomp

    if not seccomp.supported():
        return LayerCheck(
            False,
            f"no seccomp filter for {platform.system()}/{platform.machine()}",
            "run on Linux x86_64 or aarch64; the audit hook still refuses processes started from Python",
        )
    code, err = _run_quiet([sys.executable, seccomp.__file__])
    if code == 0:
        return LayerCheck(
            True,
            "new processes, exec and (without network) UDP, raw and packet sockets are refused by "
            "the kernel itself (threads still work)",
        )
    return LayerCheck(
        False,
        f"the seccomp self-test failed (exit {code}): {err[:200]}",
        "use a Linux kernel with seccomp filters (CONFIG_SECCOMP_FILTER, Linux 3.17+); in a container, "
        "the runtime must let processes add their own filters (Docker's default profile does)",
    )


@functools.lru_cache(maxsize=1)
def landlock_abi() -> int:
    from .inside import landlock

    return landlock.abi_version()


LANDLOCK_FIX = (
    "use Linux 5.13 or later with Landlock enabled (`lsm=landlock,...` on the kernel command line; "
    "`cat /sys/kernel/security/lsm` lists the active modules); in a container, the runtime's seccomp "
    "profile must allow the landlock_* system calls"
)


@functools.lru_cache(maxsize=1)
def landlock_check() -> LayerCheck:
    """Does Landlock restrict a process here (a file outside its rules unreadable, TCP refused)?"""
    import tempfile

    from .inside import landlock

    abi = landlock_abi()
    if abi < 1:
        return LayerCheck(False, "Landlock is not available in this kernel", LANDLOCK_FIX)
    with tempfile.TemporaryDirectory(prefix="llm-agent-landlock-") as folder:
        code, err = _run_quiet([sys.executable, "-I", landlock.__file__, folder])
    if code != 0:
        return LayerCheck(
            False, f"Landlock ABI {abi} is offered but the self-test failed (exit {code}): {err[:200]}", LANDLOCK_FIX
        )
    net = "TCP connect/bind refused" if abi >= 4 else "TCP not covered (ABI < 4)"
    scopes = "abstract unix sockets and signals scoped" if abi >= 6 else "signals not scoped (ABI < 6)"
    return LayerCheck(True, f"Landlock ABI {abi}: reads and writes limited by the kernel, {net}, {scopes}")


def _requested_level(config: SandboxConfig) -> str:
    requested = config.isolation
    if requested in ("off", "reduced"):
        return requested
    check = bubblewrap_check(bool(config.allow_network))
    if requested == "full" and not check.ok:
        raise SandboxUnavailable("full", check.detail, check.fix)
    return "full" if check.ok else "reduced"


def resolve_layers(config: SandboxConfig) -> Layers:
    """The layers a kernel launched now gets; refuses a level that nothing enforces unless opted in."""
    from .inside import seccomp

    if config.gateway_url or config.kernel_manager_class.__name__ == "GatewayKernelManager":
        return Layers("gateway")
    level = _requested_level(config)
    if level == "off":
        return Layers("off")
    layers = Layers(level, bubblewrap=level == "full", landlock=landlock_abi(), seccomp=seccomp.supported())
    if not layers.enforced_by and not config.allow_unenforced:
        raise SandboxUnavailable(
            level,
            "neither bubblewrap nor Landlock works here, so nothing the operating system enforces would keep generated "
            "code from your files, your other kernels and the network (the audit hook is a guide that code can switch "
            "off)",
            f"Install bubblewrap (apt-get install bubblewrap) or {LANDLOCK_FIX}; or, knowing that, opt in with "
            "`SandboxConfig.allow_unenforced = True`.",
        )
    return layers


def resolve_level(config: SandboxConfig) -> str:
    """The isolation level that will be used: ``auto`` becomes ``full`` when bubblewrap works."""
    return resolve_layers(config).level


def probe(config: SandboxConfig | None = None) -> IsolationReport:
    """Check each isolation layer on this machine (for ``llm-agent doctor``)."""
    from .inside import seccomp

    config = config or SandboxConfig()
    bwrap = bubblewrap_check(bool(config.allow_network))
    lock = landlock_check()
    level = "full" if (config.isolation in ("auto", "full") and bwrap.ok) else config.isolation
    if level == "auto":
        level = "reduced"
    notes = []
    if config.isolation == "full" and not bwrap.ok:
        notes.append("isolation 'full' was asked for but bubblewrap does not work: the sandbox will not start")
    layers = (
        Layers(level, bubblewrap=level == "full", landlock=landlock_abi() if lock.ok else 0, seccomp=seccomp.supported())
        if level != "off"
        else Layers("off")
    )
    if level == "reduced" and layers.enforced_by:
        notes.append(
            "without bubblewrap, Landlock is the boundary: reads limited to the system, the sandbox's Python "
            "and the project, writes to the session's folders, no TCP; the network namespace, private /tmp "
            "and own PID namespace of 'full' are missing"
        )
    if level == "reduced" and not layers.enforced_by:
        notes.append(
            "neither bubblewrap nor Landlock works: the sandbox starts only with "
            "SandboxConfig.allow_unenforced = True, and then nothing the operating system enforces contains it"
            + (" (opted in)" if config.allow_unenforced else "")
        )
    if level == "off":
        notes.append("isolation is off: generated code runs with your permissions, network and environment")
    hook = LayerCheck(
        level != "off",
        "a guide, not a wall: it refuses processes, network, native code and writes outside the workspace with "
        "friendly messages, but code can switch it off from pure Python; bubblewrap and Landlock are the boundary"
        if level != "off"
        else "disabled (isolation 'off')",
        "" if level != "off" else "set SandboxConfig.isolation = 'auto'",
    )
    return IsolationReport(
        level=level,
        requested=config.isolation,
        bubblewrap=bwrap,
        user_namespaces=user_namespace_check(),
        landlock=lock,
        rlimits=rlimits_check(),
        seccomp=seccomp_check()
        if level != "off"
        else LayerCheck(False, "disabled (isolation 'off')", "set SandboxConfig.isolation = 'auto'"),
        audit_hook=hook,
        enforced_by=layers.enforced_by,
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
        proc = subprocess.run(
            [runtime.executable, "-c", script], capture_output=True, text=True, timeout=300, env=env, stdin=subprocess.DEVNULL
        )
        found = json.loads(proc.stdout.strip().splitlines()[-1])
    except (OSError, subprocess.TimeoutExpired, ValueError, IndexError):
        found = {}
    return {name: bool(found.get(name, False)) for name in modules}
