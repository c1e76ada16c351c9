"""What the sandbox kernel can see and write, as one ``View``, and that view as the two layers that enforce it:
bubblewrap's mounts (``full``) and Landlock's rules (``full`` and ``reduced``).

Both layers come from the same view so they agree: the system, the sandbox's own Python and the project
are readable; credentials, the home folder's dot-files (when the home folder is readable at all), the rest
of the data root (other sessions, the conversation store) are not; the session's workspace, snapshots and
scratch folders are the only places it may write.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from .paths import SessionPaths

SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/opt", "/sys")
SECRET_ETC_FILES = ("/etc/shadow", "/etc/shadow-", "/etc/gshadow", "/etc/gshadow-", "/etc/sudoers", "/etc/sudoers.d", "/etc/ssh")
#: Places in a home folder that hold credentials; hidden even when dot-files are not.
SECRET_HOME_ENTRIES = (
    ".ssh",
    ".aws",
    ".azure",
    ".gnupg",
    ".netrc",
    ".kube",
    ".docker",
    ".git-credentials",
    ".pypirc",
    ".password-store",
    ".config/gcloud",
    ".config/gh",
    ".jupyter",
    ".local/share/jupyter",
    ".bash_history",
    ".python_history",
    ".ipython",
    ".pgpass",
    ".npmrc",
    ".cache/huggingface",
    ".ollama",
)
#: Devices any program expects to open.
DEVICES = ("/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom")
PRIVATE_TMP = ("/tmp", "/var/tmp", "/dev/shm")


def real(path: str | os.PathLike[str]) -> str:
    return os.path.realpath(os.fspath(path))


def inside(path: str, root: str) -> bool:
    return path == root or root == "/" or path.startswith(root.rstrip("/") + "/")


@dataclass
class View:
    """The sandbox's file system, as paths on the host (the same paths inside bubblewrap)."""

    readable: list[str]  # read-only roots: the sandbox's Python, the project, extra folders
    hidden: list[str]  # inside readable roots, yet not visible (credentials, dot-files, the data root)
    keep: list[str]  # inside hidden paths, yet readable (a Python installed in ~/.pyenv)
    session: str
    writable: list[str]  # the session's workspace, snapshots and scratch folders
    session_readable: list[str]  # the launch folder and the connection file (not the lock or state files)
    data_root: str
    ipc: str
    private_tmp: bool  # /tmp, /var/tmp and /dev/shm are the sandbox's own (bubblewrap)
    tmp_sizes: dict[str, int] = field(default_factory=dict)


def home_hidden(home: str, readable: list[str], hide_dotfiles: bool) -> list[str]:
    """What to hide of the home folder: its credentials, and all its dot-entries when it is readable."""
    hidden = [os.path.join(home, e) for e in SECRET_HOME_ENTRIES]
    if hide_dotfiles and any(inside(home, r) for r in readable):
        try:
            hidden += [e.path for e in os.scandir(home) if e.name.startswith(".")]
        except OSError:
            pass
    try:
        from jupyter_core.paths import jupyter_runtime_dir

        hidden.append(jupyter_runtime_dir())
    except (ImportError, OSError):  # no Jupyter here, or no home to find its folders in: nothing of it to hide
        pass
    return sorted({real(h) for h in hidden} | {h for h in hidden})


def build_view(
    paths: SessionPaths,
    readable: list[str],
    keep: list[str],
    hide_dotfiles: bool,
    private_tmp: bool,
    tmp_sizes: dict[str, int],
    launch_dir: str,
    connection_file: str,
) -> View:
    home = real(os.path.expanduser("~"))
    readable = [r for r in dict.fromkeys(readable) if r != "/"]
    data_root = real(paths.data_root)
    hidden = home_hidden(home, readable, hide_dotfiles) + [data_root, real(SessionPaths.ipc_base())]
    return View(
        readable=readable,
        hidden=hidden,
        keep=[k for k in dict.fromkeys(keep) if any(inside(k, h) for h in hidden)],
        session=real(paths.root),
        writable=[real(p) for p in (paths.workspace, paths.snapshots, paths.run)],
        session_readable=[launch_dir, connection_file],
        data_root=data_root,
        ipc=real(paths.ipc_dir),
        private_tmp=private_tmp,
        tmp_sizes=tmp_sizes,
    )


# --- bubblewrap ---------------------------------------------------------------------------------------


def bwrap_args(view: View) -> list[str]:
    """Mount options that build ``view`` inside bubblewrap (later mounts cover earlier ones)."""
    args = _system_mounts()
    for tmp in PRIVATE_TMP:
        size = view.tmp_sizes.get(tmp)
        args += (["--size", str(size)] if size else []) + ["--tmpfs", tmp]
    args += _readable_mounts(view)
    for kept in sorted(view.keep, key=len):
        if os.path.exists(kept):
            args += ["--ro-bind", kept, kept]
    # Hide the rest of the data root (other sessions, the conversation store, logs), then show this session:
    # read-only as a whole, writable where the kernel may write.
    args += ["--tmpfs", view.data_root, "--ro-bind", view.session, view.session]
    for rw in view.writable:
        args += ["--bind", rw, rw]
    if not any(inside(view.ipc, w) for w in view.writable):
        args += ["--bind", view.ipc, view.ipc]
    return args


def _system_mounts() -> list[str]:
    """The system's folders read-only (its secrets in /etc masked), a fresh /dev and /proc."""
    args: list[str] = []
    for d in SYSTEM_DIRS:
        if os.path.islink(d):
            args += ["--symlink", os.readlink(d), d]
        elif os.path.isdir(d):
            args += ["--ro-bind", d, d]
    for f in SECRET_ETC_FILES:
        args += _mask(f)
    return args + ["--dev", "/dev", "--proc", "/proc"]


def _readable_mounts(view: View) -> list[str]:
    """The view's readable roots read-only (each once, outermost first), with its hidden paths masked in them."""
    args: list[str] = []
    bound: list[str] = []
    for root in sorted(view.readable, key=len):
        if not os.path.exists(root) or any(inside(root, b) for b in bound + ["/usr"]):
            continue
        args += ["--ro-bind", root, root]
        bound.append(root)
    for secret in view.hidden:
        if any(inside(secret, b) for b in bound) and secret != view.data_root:
            args += _mask(secret)
    return args


def _mask(path: str) -> list[str]:
    if os.path.islink(path) or not os.path.exists(path):
        return []
    return ["--tmpfs", path] if os.path.isdir(path) else ["--ro-bind", "/dev/null", path]


# --- Landlock -------------------------------------------------------------------------------------------


def landlock_rules(view: View, allow_network: bool) -> dict[str, object]:
    """The same view as Landlock rules: it only allows, so readable roots are split around hidden paths."""
    read = [p for d in SYSTEM_DIRS if d != "/etc" for p in [d] if os.path.isdir(p)]
    read += cover("/etc", list(SECRET_ETC_FILES))
    for root in view.readable:
        read += cover(root, view.hidden)
    read += [k for k in view.keep if os.path.exists(k)] + view.session_readable
    write = list(view.writable) + [view.ipc] + writable_tmp(view)
    return {"read": read, "write": write, "devices": list(DEVICES), "proc": True, "allow_network": allow_network}


def writable_tmp(view: View) -> list[str]:
    """The private temporary folders Landlock may grant: a rule on /tmp would also grant whatever bubblewrap
    mounted beneath it (a project or data root that lives in /tmp), so such a folder is left out."""
    if not view.private_tmp:
        return []
    mounted = view.readable + view.keep + view.writable + view.session_readable + [view.ipc, view.session]
    return [t for t in PRIVATE_TMP if not any(inside(m, t) for m in mounted)]


def cover(root: str, hidden: list[str]) -> list[str]:
    """Paths that together grant ``root`` except the ``hidden`` paths beneath it (symlinks are left out:
    what they point to must be granted on its own)."""
    if any(inside(root, h) for h in hidden) or not os.path.exists(root):
        return []
    below = [h for h in hidden if inside(h, root)]
    if not below or not os.path.isdir(root):
        return [root]
    try:
        entries = list(os.scandir(root))
    except OSError:
        return []
    found: list[str] = []
    for entry in entries:
        if not entry.is_symlink():
            found += cover(entry.path, below)
    return found
