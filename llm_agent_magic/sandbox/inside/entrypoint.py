"""Entry point of the sandbox kernel process: ``python -I entrypoint.py --policy FILE -f CONNECTION_FILE``.

Runs inside the sandbox's Python, which needs only ipykernel (not this package), so
the sibling modules of ``inside/`` are loaded by path. Order matters:

1. what the operating system enforces, first, so the whole kernel start runs under it: resource
   limits, the seccomp filter (no new processes), Landlock (reads, writes, TCP), before any file the
   sandbox could have written is read and before any thread exists;
2. start in the launch folder, which the sandbox cannot write (not in the workspace: nothing there may
   take part in the start), and put the user's site-packages on ``sys.path`` (``-I`` left them out);
3. import the kernel machinery (and ctypes, whose import opens the main program);
4. initialise the kernel (sockets, shell), then refuse new unix sockets (seccomp, second filter);
5. install the audit hook, so the kernel's own start is not subject to it;
6. move into the workspace (importable, after the installed packages) and serve.
"""

from __future__ import annotations

import atexit
import importlib
import importlib.util
import json
import os
import sys
import threading
import time
import types
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
HELPER_MODULE = "_llm_agent_sandbox"
IDLE_BEFORE_PRELOAD = 0.2  # seconds without a cell before a background import starts
#: Text of the sibling modules, when the parent sent them over the kernel protocol (a gateway's kernel, see
#: ``remote.py``); empty for a local launch, which reads them from this folder.
_SOURCES: dict[str, str] = {}


def main() -> None:
    # Running a script puts its folder first on sys.path; our sibling modules must not shadow user imports.
    if sys.path and os.path.abspath(sys.path[0] or ".") == HERE:
        del sys.path[0]
    argv = sys.argv[1:]
    policy_file = _pop_option(argv, "--policy")
    with open(policy_file, encoding="utf-8") as fh:
        policy = json.load(fh)
    seccomp = _confine(policy)
    if policy.get("start_dir"):
        os.chdir(policy["start_dir"])
    _extend_path(policy)

    import ctypes  # noqa: F401  (its import dlopens the main program; do it before the hook)
    import warnings

    # The launch folder's IPython dir is read-only on purpose; IPython then works in a fresh temporary one.
    warnings.filterwarnings("ignore", message="IPython dir .* is not a writable location")

    from ipykernel.kernelapp import IPKernelApp

    _register_helpers(policy)
    app = IPKernelApp.instance()
    app.initialize(argv)
    if seccomp is not None:
        seccomp.install_late(policy.get("sockets", "all"))  # the kernel's own sockets exist now
    if policy.get("audit_hook", True):
        _install_audit_hook(policy)
    if policy.get("start_dir"):
        sys.meta_path.insert(0, _RcFrom(policy["start_dir"]))
    if policy.get("workspace"):
        os.chdir(policy["workspace"])
        if getattr(sys.flags, "safe_path", False) and "" not in sys.path:  # safe_path: Python 3.11+
            sys.path.append("")  # modules the code writes import, but never shadow installed ones
    if policy.get("preload"):
        # Import the usual analysis libraries while the kernel is idle, so the first analysis cell finds them.
        activity = {"busy": False, "last": time.monotonic()}
        shell: Any = app.shell  # set by initialize()
        shell.events.register("pre_execute", lambda: activity.update(busy=True))
        shell.events.register("post_execute", lambda: activity.update(busy=False, last=time.monotonic()))
        threading.Thread(target=_preload, args=(policy["preload"], activity), name="llm-agent-preload", daemon=True).start()
    app.start()


def _confine(policy: dict[str, Any]) -> types.ModuleType | None:
    """Limits, seccomp, Landlock and capabilities, before anything else runs; the seccomp module if its filter is on."""
    _apply_limits(policy.get("limits", {}))
    seccomp = _load("seccomp") if policy.get("seccomp") else None
    if seccomp is not None:
        try:
            seccomp.install(policy.get("sockets", "all"))  # threads, even earlier ones, get it too
        except OSError as exc:
            print(f"llm-agent sandbox: seccomp filter not installed: {exc}", file=sys.stderr)
            seccomp = None
    if policy.get("landlock"):
        try:
            _load("landlock").install(policy["landlock"])  # this thread only: no other exists yet
        except OSError as exc:
            # The parent reports Landlock in every result; a kernel without it must not start.
            print(f"llm-agent sandbox: Landlock could not be applied ({exc}); not starting", file=sys.stderr)
            sys.exit(3)
    if policy.get("drop_capabilities"):
        _drop_capabilities()
    return seccomp


def _preload(modules: list[str], activity: dict[str, Any]) -> None:
    # Stay out of the way of cells: start each import only after the kernel has been idle a moment, run at
    # the lowest CPU priority, and let the main thread take the GIL back within a millisecond, not five.
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
    except (AttributeError, OSError):
        pass
    for name in modules:
        while activity["busy"] or time.monotonic() - activity["last"] < IDLE_BEFORE_PRELOAD:
            time.sleep(0.05)
        interval = sys.getswitchinterval()
        sys.setswitchinterval(0.001)
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001  # a missing library is the user's cell's business, not the kernel's
            pass
        finally:
            sys.setswitchinterval(interval)


class _RcFrom:
    """Import finder: the first ``import matplotlib`` reads its rc file from ``folder``, not the current folder.

    matplotlib looks for ``./matplotlibrc`` before $MATPLOTLIBRC; in the workspace that would be a file earlier
    code left there, steering every later kernel's plots (and its ``backend: module://...`` imports).
    """

    def __init__(self, folder: str) -> None:
        self.folder = folder

    def find_spec(
        self, name: str, path: Sequence[str] | None = None, target: types.ModuleType | None = None
    ) -> ModuleSpec | None:
        if name != "matplotlib":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        loader = getattr(spec, "loader", None)
        if loader is not None and hasattr(loader, "exec_module"):
            real_exec, folder = loader.exec_module, self.folder

            def exec_module(module: types.ModuleType) -> None:
                here = os.getcwd()
                os.chdir(folder)
                try:
                    real_exec(module)
                finally:
                    os.chdir(here)

            loader.exec_module = exec_module
        return spec


def _drop_capabilities() -> None:
    """Give up every capability (root at 'reduced' could otherwise reconfigure the network or read any file's
    owner's files regardless of their mode). No process is started afterwards, so none come back."""
    import ctypes
    import struct

    libc = ctypes.CDLL(None, use_errno=True)
    header = ctypes.create_string_buffer(struct.pack("Ii", 0x20080522, 0))  # _LINUX_CAPABILITY_VERSION_3
    data = ctypes.create_string_buffer(24)  # two zeroed {effective, permitted, inheritable} sets
    if libc.capset(header, data) != 0:
        print(f"llm-agent sandbox: could not drop capabilities (errno {ctypes.get_errno()})", file=sys.stderr)


def _extend_path(policy: dict[str, Any]) -> None:
    """The user's site-packages (with its .pth files) and a kernel spec's PYTHONPATH, which ``-I`` ignored."""
    if policy.get("user_site") and os.path.isdir(policy["user_site"]):
        import site

        site.addsitedir(policy["user_site"])
    for folder in policy.get("sys_path", ()):
        if folder not in sys.path:
            sys.path.append(folder)


def _pop_option(argv: list[str], name: str) -> str:
    i = argv.index(name)
    value = argv[i + 1]
    del argv[i : i + 2]
    return value


def _apply_limits(limits: dict[str, int]) -> None:
    import resource

    names = {
        "as": resource.RLIMIT_AS,
        "cpu": resource.RLIMIT_CPU,
        "nproc": resource.RLIMIT_NPROC,
        "fsize": resource.RLIMIT_FSIZE,
        "nofile": resource.RLIMIT_NOFILE,
        "core": resource.RLIMIT_CORE,
    }
    for key, value in limits.items():
        which = names[key]
        soft, hard = resource.getrlimit(which)
        new_hard = value if hard == resource.RLIM_INFINITY else min(value, hard)
        new_soft = new_hard
        if key == "cpu":
            # SIGXCPU at the soft limit lets the parent report "CPU time limit"; SIGKILL follows at the hard one.
            new_hard = new_hard + 5 if hard == resource.RLIM_INFINITY else new_hard
        try:
            resource.setrlimit(which, (new_soft, new_hard))
        except (ValueError, OSError) as exc:
            print(f"llm-agent sandbox: could not set {key} limit: {exc}", file=sys.stderr)


def _load(name: str) -> types.ModuleType:
    if name in _SOURCES:
        module = types.ModuleType(f"{HELPER_MODULE}_{name}")
        module.__file__ = f"<llm-agent sandbox {name}.py>"
        sys.modules[module.__name__] = module
        exec(compile(_SOURCES[name], module.__file__, "exec"), module.__dict__)
        return module
    spec = importlib.util.spec_from_file_location(f"{HELPER_MODULE}_{name}", os.path.join(HERE, f"{name}.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up in sys.modules
    spec.loader.exec_module(module)
    return module


def boot_remote(sources: dict[str, str], policy: dict[str, Any]) -> _JSON:
    """Set up a kernel a gateway started (it ran no entry point): see ``remote.py``."""
    _SOURCES.update(sources)
    _load("confined")  # remote.py imports it by the name _load gives it
    return _JSON(_load("remote").boot(policy, sys.modules[__name__]))


def _install_audit_hook(policy: dict[str, Any]) -> None:
    # Load, install, forget: nothing reachable from the user's namespace keeps the hook or its module.
    module = _load("audit_hook")
    del sys.modules[module.__name__]
    module.install(policy["audit"])


class _JSON:
    """Returned from user_expressions: IPython's JSON formatter sends it as application/json."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data

    def _repr_json_(self) -> dict[str, Any]:
        return self.data

    def __repr__(self) -> str:
        return "<llm-agent sandbox data>"


def _register_helpers(policy: dict[str, Any]) -> types.ModuleType:
    """The ``_llm_agent_sandbox`` module the parent calls through silent user_expressions."""
    summaries = _load("summaries")
    # snapshots.py imports these by the names _load gives them, and catalog.py and restore.py the ones before them.
    for sibling in ("confined", "atomic", "catalog", "restore"):
        _load(sibling)
    snapshots = _load("snapshots")
    helper = types.ModuleType(HELPER_MODULE)
    state: dict[str, Any] = {"writer": None}
    snap_dir = policy["snapshots"]

    def writer() -> Any:  # a snapshots.SnapshotWriter
        if state["writer"] is None:
            state["writer"] = snapshots.SnapshotWriter(snap_dir, background=True)
        return state["writer"]

    def flush(timeout: float = 60.0) -> _JSON:
        done = state["writer"].flush(timeout) if state["writer"] is not None else True
        return _JSON({"flushed": done})

    def user_vars() -> dict[str, Any]:
        from IPython import get_ipython

        shell = get_ipython()
        variables: dict[str, Any] = summaries.user_variables(shell.user_ns, shell.user_ns_hidden)
        return variables

    def after_cell(summary: bool = True, snapshot: bool = True, max_vars: int = 50) -> _JSON:
        variables = user_vars()
        out: dict[str, Any] = {}
        if summary:
            out["summary"] = summaries.summarize_namespace(variables, max_vars)
        if snapshot:
            out["snapshots"] = writer().update(variables)
        return _JSON(out)

    def restore(max_rows: int = snapshots.DEFAULT_MAX_ROWS, max_bytes: int = snapshots.DEFAULT_MAX_BYTES) -> _JSON:
        from IPython import get_ipython

        if state["writer"] is not None:
            state["writer"].close(60.0)
        report = snapshots.restore_into(get_ipython().user_ns, snap_dir, max_rows=max_rows, max_bytes=max_bytes)
        state["writer"] = None  # re-read the catalog so restored values count as unchanged
        return _JSON(report)

    def load_pushed(name: str, path: str) -> _JSON:
        import pandas as pd
        from IPython import get_ipython

        get_ipython().user_ns[name] = pd.read_parquet(path)
        os.unlink(path)
        return after_cell(summary=False, snapshot=True)

    # A kernel shut down politely finishes its snapshots first.
    atexit.register(lambda: state["writer"] is not None and state["writer"].flush(30.0))
    helper.__dict__.update(
        after_cell=after_cell, flush=flush, restore=restore, load_pushed=load_pushed, level=policy.get("level", "off")
    )
    sys.modules[HELPER_MODULE] = helper
    return helper


if __name__ == "__main__":
    main()
