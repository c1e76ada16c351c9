"""The sandbox's side of a kernel on another machine (through a gateway): its folders, and files in and out.

A gateway's kernel shares no disk with the parent, and its image need not hold this package. So the parent
sends the files of ``inside/`` as text over the kernel protocol (``transport.bootstrap_code``), the entry
point's ``_load`` builds modules from them, and ``boot`` sets the kernel up as a local launch would, where
it can: the session's folders under the kernel's working folder (one set per launch, so a restarted kernel
starts clean), credentials removed from the environment, the helper module with the snapshot functions, the
audit hook, and the workspace as the current folder. What a local launch adds outside Python (bubblewrap,
Landlock, seccomp, limits) is the gateway's business: its pod, container or machine.

Files move as base64 chunks through silent executions: ``put`` writes one chunk of an upload into a new
temp file (never through a link planted at the name) and renames it into place at the last one; ``get``
reads one chunk of a regular file, without following links (``confined.py``). Names are plain file names,
each area (workspace, snapshots, pushed) one folder. Standard library only.
"""

from __future__ import annotations

import base64
import fnmatch
import os
import secrets
import sys
import tempfile
from typing import Any

if __package__:
    from . import confined
else:  # loaded by the entry point from the text the parent sent
    import _llm_agent_sandbox_confined as confined  # type: ignore[no-redef]

AREAS = ("workspace", "snapshots", "pushed")
#: Most entries a listing returns (a workspace with more files is listed in part).
MAX_LISTED = 5000
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


def folders(base: str) -> dict[str, str]:
    """The session's folders in this kernel: ``<working folder>/.llm-agent/<base>/<area>``."""
    root = os.path.join(os.path.abspath(os.getcwd()), ".llm-agent", base)
    return {"root": root, **{area: os.path.join(root, area) for area in AREAS}}


def scrub_environment(patterns: list[str], always: list[str]) -> list[str]:
    """Remove credentials from this process's environment (as the parent does for a local launch)."""
    upper = [p.upper() for p in patterns]
    gone = [k for k in os.environ if k in always or any(fnmatch.fnmatchcase(k.upper(), p) for p in upper)]
    for name in gone:
        del os.environ[name]
    return sorted(gone)


def audit_policy(where: dict[str, str], allow_network: bool) -> dict[str, Any]:
    """The audit hook's policy here: writes only in the session's folders and the temporary folder."""
    return {
        "workspace": where["workspace"],
        "write_rules": [[where["root"], True], [tempfile.gettempdir(), True]],
        "write_files": ["/dev/null"],
        "read_rules": [],
        "trusted_read_roots": [],
        "allow_network": allow_network,
        "guard_proc": False,
    }


class Transfers:
    """Uploads in progress and reads of one kernel's session folders."""

    def __init__(self, where: dict[str, str], max_bytes: int) -> None:
        self.where = where
        self.max_bytes = max_bytes
        #: (area, name) -> (fd, temp name, size, descriptor of its folder)
        self._uploads: dict[tuple[str, str], tuple[int, str, int, int]] = {}

    def _folder(self, area: str) -> str:
        if area not in AREAS:
            raise ValueError(f"unknown area {area!r}")
        return self.where[area]

    def put(self, area: str, name: str, data: str, offset: int, last: bool, mtime_ns: int = 0) -> dict[str, Any]:
        """One chunk of ``name``, a path inside the area (``data/sales.csv``: an attached file keeps its folder);
        folders on the way are made, and none is entered through a link."""
        folder = self._folder(area)
        parts = name.split("/") if isinstance(name, str) else [name]
        for part in parts:
            _check_name(part)
        chunk = base64.b64decode(data.encode("ascii"), validate=True)
        key = (area, name)
        if offset == 0:
            self._abort(key)
            with confined._folder(folder, parts[:-1], name, create=True) as dir_fd:
                held = os.dup(dir_fd)
            tmp = f".{parts[-1][:64]}.{secrets.token_hex(6)}.upload"
            try:
                fd = os.open(tmp, _CREATE, 0o644, dir_fd=held)
            except BaseException:
                os.close(held)
                raise
            self._uploads[key] = (fd, tmp, 0, held)
        if key not in self._uploads or self._uploads[key][2] != offset:
            self._abort(key)
            raise ValueError(f"chunk of {name} at {offset} is out of order; send the file again from the start")
        fd, tmp, size, held = self._uploads[key]
        size += len(chunk)
        if size > self.max_bytes:
            self._abort(key)
            raise ValueError(f"{name} is larger than the {self.max_bytes:,} bytes allowed")
        os.write(fd, chunk)
        self._uploads[key] = (fd, tmp, size, held)
        if not last:
            return {"size": size}
        del self._uploads[key]
        try:
            if mtime_ns:
                os.utime(fd, ns=(mtime_ns, mtime_ns))
            os.close(fd)
            # A link planted at the name is replaced, never followed.
            os.replace(tmp, parts[-1], src_dir_fd=held, dst_dir_fd=held)
        finally:
            os.close(held)
        return {"size": size, "done": True}

    def _abort(self, key: tuple[str, str]) -> None:
        upload = self._uploads.pop(key, None)
        if upload is not None:
            fd, tmp, _, held = upload
            os.close(fd)
            try:
                os.unlink(tmp, dir_fd=held)
            except OSError:
                pass
            os.close(held)

    def get(self, area: str, name: str, offset: int, size: int) -> dict[str, Any]:
        """One chunk of a regular file (``eof`` at its end), never through a link."""
        _check_name(name)
        with confined.open_confined(self._folder(area), name, self.max_bytes) as fh:
            st = os.fstat(fh.fileno())
            fh.seek(offset)
            chunk = fh.read(size)
        return {
            "data": base64.b64encode(chunk).decode("ascii"),
            "size": st.st_size,
            "mtime_ns": st.st_mtime_ns,
            "eof": offset + len(chunk) >= st.st_size,
        }

    def listing(self, area: str) -> dict[str, Any]:
        """The area's top-level files: name, size, mtime; what is not a regular file comes with ``refused``."""
        entries = confined.list_confined(self._folder(area), limit=MAX_LISTED)
        return {
            "files": [
                {"name": e.relpath, "size": e.size, "mtime_ns": e.mtime_ns, "refused": e.refused}
                for e in entries
                if "/" not in e.relpath
            ]
        }

    def remove(self, area: str, name: str) -> dict[str, Any]:
        _check_name(name)
        try:
            os.unlink(os.path.join(self._folder(area), name))
        except FileNotFoundError:
            pass
        return {"removed": name}

    def cleanup(self) -> dict[str, Any]:
        """Remove this launch's folders (the parent has what it needs: it fetched it)."""
        for key in list(self._uploads):
            self._abort(key)
        # By path, bottom up (not shutil.rmtree's descriptor walk, which the audit hook cannot follow).
        errors: list[str] = []
        for folder, subfolders, files in os.walk(self.where["root"], topdown=False):
            for name in files:
                _remove(os.unlink, os.path.join(folder, name), errors)
            for name in subfolders:
                path = os.path.join(folder, name)
                _remove(os.unlink if os.path.islink(path) else os.rmdir, path, errors)
        _remove(os.rmdir, self.where["root"], errors)
        return {"removed": self.where["root"], "errors": errors[:10]}


def _remove(fn: Any, path: str, errors: list[str]) -> None:
    try:
        fn(path)
    except OSError as exc:
        errors.append(f"{path}: {exc}")


def _check_name(name: object) -> None:
    if (
        not isinstance(name, str)
        or not name
        or name in (".", "..")
        or name.startswith(".")
        or "/" in name
        or "\\" in name
        or "\0" in name
        or len(name) > 255
    ):
        raise ValueError(f"{name!r} is not a plain file name")


def boot(policy: dict[str, Any], entry: Any) -> dict[str, Any]:
    """Make this kernel the session's sandbox; ``entry`` is the entry point's module (its helpers and hook)."""
    where = folders(policy["base"])
    for area in AREAS:
        os.makedirs(where[area], exist_ok=True)
    scrubbed = scrub_environment(policy.get("scrub", []), policy.get("always_scrub", []))
    os.environ["LLM_AGENT_SANDBOX"] = "gateway"
    transfers = Transfers(where, int(policy["max_transfer_bytes"]))
    helper = entry._register_helpers({"snapshots": where["snapshots"], "level": "gateway"})

    def answering(fn: Any) -> Any:
        # The parent reads answers as JSON; a refusal is an answer too (with its reason), not a traceback.
        def call(*args: Any, **kwargs: Any) -> Any:
            try:
                return entry._JSON(fn(*args, **kwargs))
            except Exception as exc:  # noqa: BLE001  # a refusal is an answer: whatever the call raised goes back as its reason
                return entry._JSON({"error": f"{type(exc).__name__}: {str(exc)[:500]}"})

        return call

    for name in ("put", "get", "listing", "remove", "cleanup"):
        setattr(helper, name, answering(getattr(transfers, name)))
    os.chdir(where["workspace"])
    if "" not in sys.path:
        sys.path.append("")  # modules the code writes import, after the installed ones
    if policy.get("audit_hook", True):
        entry._install_audit_hook({"audit": audit_policy(where, bool(policy.get("allow_network")))})
    return {"folders": where, "scrubbed": scrubbed, "python": sys.executable, "version": sys.version.split()[0]}
