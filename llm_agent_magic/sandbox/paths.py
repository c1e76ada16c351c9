"""Where one session's sandbox keeps its files: ``<data_root>/sessions/<id>/...``."""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from llm_agent_magic.config import PathsConfig

_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
# AF_UNIX socket paths must fit in 108 bytes; ipc sockets are "<dir>/kernel-ipc-<n>".
_MAX_IPC_DIR = 90


def session_folder_name(session_id: str) -> str:
    """A folder name for a session id; ids such as notebook paths get a readable slug plus a hash."""
    if _SAFE_ID.match(session_id) and ".." not in session_id:
        return session_id
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", session_id).strip("._-")[:40] or "session"
    return f"{slug}-{hashlib.sha1(session_id.encode()).hexdigest()[:10]}"


@dataclass(frozen=True)
class SessionPaths:
    """The folders of one session. ``kernel`` holds the connection file, policy and kernel runtime files."""

    session_id: str
    data_root: Path
    root: Path

    @classmethod
    def for_session(cls, session_id: str, paths: PathsConfig | None = None) -> SessionPaths:
        paths = paths or PathsConfig()
        root = paths.sessions_dir / session_folder_name(session_id)
        return cls(session_id=session_id, data_root=paths.root, root=root)

    @property
    def sessions_dir(self) -> Path:
        return self.root.parent

    @property
    def workspace(self) -> Path:
        return self.root / "workspace"

    @property
    def snapshots(self) -> Path:
        return self.root / "snapshots"

    @property
    def outputs(self) -> Path:
        """Full text of outputs that were too long to give the model whole."""
        return self.root / "outputs"

    @property
    def kernel(self) -> Path:
        return self.root / "kernel"

    def connection_file(self, launch_id: str) -> Path:
        """Connection file of one launch. Each launch has its own names, so cleaning up after a dead kernel
        never removes the files of the kernel that replaced it; ``state.json`` says which one is live."""
        return self.kernel / f"connection-{launch_id}.json"

    @property
    def state_file(self) -> Path:
        """Who started the live kernel (pid, owner, isolation level): lets another process attach."""
        return self.kernel / "state.json"

    @property
    def lock_file(self) -> Path:
        return self.kernel / "lock"

    @property
    def log_file(self) -> Path:
        """The kernel process's own stdout/stderr (crash messages land here)."""
        return self.kernel / "kernel.log"

    @property
    def launch_dir(self) -> Path:
        """IPython's and Jupyter's folders and matplotlib's rc file for one launch: made afresh by the parent
        for every launch, read-only inside, so nothing the sandbox writes can change how a kernel starts."""
        return self.kernel / "launch"

    @property
    def holder_file(self) -> Path:
        """Who holds the session's run lock, for waiters to name (see ``hold.py``; only a label)."""
        return self.kernel / "holder.json"

    @property
    def hold_file(self) -> Path:
        """The session's run lock (see ``hold.py``)."""
        return self.kernel / "hold"

    @property
    def run(self) -> Path:
        """The only part of ``kernel/`` the sandbox may write: its HOME, caches, TMPDIR and (usually) its sockets.

        The rest of ``kernel/`` (kernel spec, policy, connection file, launch folder) is read-only inside the
        sandbox, and ``run/``'s scratch folders are emptied before each launch, so code in it cannot change
        how the next kernel is launched.
        """
        return self.kernel / "run"

    @property
    def ipc_dir(self) -> Path:
        """Folder of the kernel's unix sockets: ``run/``, or a short one in /tmp if that path is too long."""
        if len(str(self.run)) <= _MAX_IPC_DIR:
            return self.run
        return self.ipc_base() / hashlib.sha1(str(self.root).encode()).hexdigest()[:16]

    @staticmethod
    def ipc_base() -> Path:
        return Path(tempfile.gettempdir()) / f"llm-agent-{os.getuid()}"

    def ensure(self) -> SessionPaths:
        for folder in (self.workspace, self.snapshots, self.outputs, self.kernel, self.run):
            folder.mkdir(parents=True, exist_ok=True)
        os.chmod(self.kernel, 0o700)  # holds the connection key
        ipc = self.ipc_dir
        if ipc != self.run:
            base = ipc.parent
            base.mkdir(mode=0o700, exist_ok=True)
            st = base.lstat()
            if base.is_symlink() or st.st_uid != os.getuid():  # shared /tmp: refuse a planted folder
                raise PermissionError(f"{base} is not a folder owned by this user; remove it and try again")
            ipc.mkdir(mode=0o700, exist_ok=True)
        return self
