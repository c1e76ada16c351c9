"""Files in folders the sandbox can change, read and written without trusting them.

Code in the sandbox can leave anything in its workspace, its snapshots folder and ``run/``:
symbolic links (to ``~/.bashrc`` or ``/proc/self/environ``, which the parent would then read or
overwrite as itself), FIFOs (a reader blocks forever), sockets, hard links to files outside, and
files of any size. Every open here therefore

- starts from the folder (``root``) and walks the relative path one component at a time with
  ``dir_fd`` and ``O_NOFOLLOW``, so no symbolic link is followed anywhere and nothing resolves
  outside the folder (``..`` and absolute paths are refused before anything is opened);
- opens files non-blocking and accepts only regular files with a single name, checked on the open
  descriptor (no window between the check and the read);
- bounds what it reads;
- writes through a new temp file (``O_CREAT | O_EXCL | O_NOFOLLOW``) in the same folder, renamed
  over the target within that folder: a link planted at the target is replaced, never followed.

Standard library only: ``snapshots.py`` loads this file by path inside the sandbox's Python.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, Union

if __package__:
    from ...exceptions import UnsafePath as UnsafePath  # re-exported: the modules beside this one raise it
else:  # loaded by path inside the sandbox, where this package may not be importable
    # A stand-in for exceptions.UnsafePath with the same message, since exceptions.py cannot be imported there.

    class UnsafePath(OSError):  # type: ignore[no-redef]
        def __init__(self, action: str, where: str, reason: str):
            self.action, self.where, self.reason = action, where, reason
            super().__init__(f"Refused to {action} {where}: {reason}.")

        def __str__(self) -> str:
            return str(self.args[0])


#: Inside the sandbox the audit hook judges an open by its path, and of an open relative to a folder
#: descriptor it sees only the name, which it resolves against the current folder (wherever the user's
#: code went). There, files are opened by their absolute path instead: ``O_NOFOLLOW`` still refuses a
#: link at the name, and the folders above are the sandbox's own mounts.
_BY_PATH = not __package__
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_DIR_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | _NOFOLLOW | _CLOEXEC
_READ_FLAGS = os.O_RDONLY | _NOFOLLOW | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | _CLOEXEC
_CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC
#: Folder levels and directory entries ``list_confined`` looks at, at most (a planted tree must not hang it).
MAX_DEPTH = 32
MAX_SCANNED = 200_000

Data = Union[bytes, Callable[[IO[bytes]], object]]


@dataclass(frozen=True)
class ConfinedFile:
    """One entry of a listing: a regular file, or something that was refused (``refused`` says why)."""

    relpath: str
    size: int
    mtime: float
    mtime_ns: int
    refused: str = ""

    @property
    def name(self) -> str:
        return self.relpath.rsplit("/", 1)[-1]


# --- reading ---------------------------------------------------------------------------------------


def open_confined(root: str | os.PathLike[str], relpath: str, max_bytes: int | None = None) -> IO[bytes]:
    """A binary file object for the regular file ``relpath`` inside ``root``; the caller closes it.

    Raises ``UnsafePath`` for links, FIFOs, devices, sockets, folders, hard-linked files, paths that
    leave ``root``, and files larger than ``max_bytes``; ``FileNotFoundError`` when there is nothing.
    """
    where = _where(root, relpath)
    parts = _parts(relpath, where)
    with _folder(root, parts[:-1], where, create=False) as dir_fd:
        try:
            if _BY_PATH:
                fd = os.open(os.path.join(_root_path(root), *parts), _READ_FLAGS)
            else:
                fd = os.open(parts[-1], _READ_FLAGS, dir_fd=dir_fd)
        except OSError as exc:
            raise _explain(exc, dir_fd, parts[-1], "read", where) from None
    try:
        st = os.fstat(fd)
        _check_regular(st, "read", where)
        if max_bytes is not None and st.st_size > max_bytes:
            raise UnsafePath("read", where, f"it is {st.st_size:,} bytes, more than the {max_bytes:,} allowed")
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_confined(root: str | os.PathLike[str], relpath: str, max_bytes: int, *, truncate: bool = False) -> bytes:
    """The bytes of ``relpath`` inside ``root`` (see ``open_confined``), at most ``max_bytes``.

    A larger file is an ``UnsafePath``, or with ``truncate=True`` gives its first ``max_bytes``.
    The bound holds even for a file that grows while it is read.
    """
    with open_confined(root, relpath, None if truncate else max_bytes) as fh:
        data = fh.read(max_bytes + 1)
    if len(data) > max_bytes:
        if not truncate:
            raise UnsafePath("read", _where(root, relpath), f"it grew past the {max_bytes:,} bytes allowed")
        data = data[:max_bytes]
    return data


def stat_confined(root: str | os.PathLike[str], relpath: str) -> os.stat_result:
    """The status of the regular file ``relpath`` inside ``root`` (refused as ``open_confined`` refuses)."""
    with open_confined(root, relpath) as fh:
        return os.fstat(fh.fileno())


def list_confined(
    root: str | os.PathLike[str],
    relpath: str = "",
    *,
    recursive: bool = False,
    hidden: bool = False,
    limit: int | None = None,
) -> list[ConfinedFile]:
    """Files below ``root/relpath`` in name order, without following links into or out of it.

    Regular files come with their size and time; links, FIFOs, sockets, devices and hard-linked files
    come with ``refused`` set. Folders are entered only with ``recursive`` (never through a link);
    names starting with a dot are left out unless ``hidden``. At most ``limit`` entries.
    """
    where = _where(root, relpath or ".")
    parts = _parts(relpath, where) if relpath else []
    found: list[ConfinedFile] = []
    scanned = [0]
    with _folder(root, parts, where, create=False) as dir_fd:
        _scan(dir_fd, "/".join(parts), found, scanned, recursive, hidden, limit, 0)
    return found


def _scan(
    dir_fd: int,
    prefix: str,
    found: list[ConfinedFile],
    scanned: list[int],
    recursive: bool,
    hidden: bool,
    limit: int | None,
    depth: int,
) -> None:
    with os.scandir(dir_fd) as it:
        entries = sorted(it, key=lambda e: e.name)
    for entry in entries:
        scanned[0] += 1
        if (limit is not None and len(found) >= limit) or scanned[0] > MAX_SCANNED:
            return
        if not hidden and entry.name.startswith("."):
            continue
        rel = f"{prefix}/{entry.name}" if prefix else entry.name
        try:
            st = entry.stat(follow_symlinks=False)
        except OSError:
            continue  # removed meanwhile
        if stat.S_ISDIR(st.st_mode):
            if recursive and depth < MAX_DEPTH:
                try:
                    sub = os.open(entry.name, _DIR_FLAGS, dir_fd=dir_fd)
                except OSError:
                    continue  # replaced by something else meanwhile: not entered
                try:
                    _scan(sub, rel, found, scanned, recursive, hidden, limit, depth + 1)
                finally:
                    os.close(sub)
            continue
        found.append(ConfinedFile(rel, st.st_size, st.st_mtime, st.st_mtime_ns, _problem(st) or ""))


# --- writing ---------------------------------------------------------------------------------------


def write_confined(
    root: str | os.PathLike[str],
    relpath: str,
    data: Data,
    *,
    mode: int = 0o644,
    times_ns: tuple[int, int] | None = None,
) -> int:
    """Write ``relpath`` inside ``root`` atomically; returns the bytes written.

    ``data`` is bytes, or a function that writes into the binary file object it is given. Missing
    folders on the way are created; a link or anything else at the target is replaced, never
    followed. ``times_ns`` sets (atime, mtime) of the new file.
    """
    where = _where(root, relpath)
    parts = _parts(relpath, where)
    name = parts[-1]
    with _folder(root, parts[:-1], where, create=True) as dir_fd:
        tmp = f".{name[:64]}.{secrets.token_hex(6)}.tmp"
        fd = os.open(tmp, _CREATE_FLAGS, mode, dir_fd=dir_fd)
        try:
            with os.fdopen(fd, "wb") as fh:
                if isinstance(data, (bytes, bytearray, memoryview)):
                    fh.write(data)
                else:
                    data(fh)
                fh.flush()
                size = os.fstat(fh.fileno()).st_size
                if times_ns is not None:
                    os.utime(fh.fileno(), ns=times_ns)
            try:
                os.replace(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
            except IsADirectoryError:
                raise UnsafePath("write", where, "a folder of that name is in the way") from None
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp, dir_fd=dir_fd)
            raise
    return size


def rename_confined(root: str | os.PathLike[str], name: str, new_name: str) -> None:
    """Rename the entry ``name`` of ``root`` (whatever it is) to ``new_name``, in the same folder."""
    where = _where(root, name)
    old, new = _name(name, where), _name(new_name, _where(root, new_name))
    with _folder(root, [], where, create=False) as dir_fd:
        os.rename(old, new, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)


def exists_confined(root: str | os.PathLike[str], name: str) -> bool:
    """Whether ``root`` has an entry ``name`` (of any kind, links included, none of them followed)."""
    where = _where(root, name)
    entry = _name(name, where)
    with _folder(root, [], where, create=False) as dir_fd:
        try:
            os.stat(entry, dir_fd=dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            return False
    return True


# --- walking ---------------------------------------------------------------------------------------


def _where(root: str | os.PathLike[str], relpath: object) -> str:
    return f"{str(relpath)!r} in {os.fspath(root)}"


def _name(name: str, where: str) -> str:
    parts = _parts(name, where)
    if len(parts) != 1:
        raise UnsafePath("open", where, "expected a name in the folder itself")
    return parts[0]


def _parts(relpath: object, where: str) -> list[str]:
    """The components of a relative path; refuses absolute paths, ``..``, empty names and NUL bytes."""
    try:
        text = os.fspath(relpath)  # type: ignore[call-overload]  # any object: fspath's TypeError is the check
    except TypeError:
        raise UnsafePath("open", where, "the path is not text") from None
    if isinstance(text, bytes):
        text = os.fsdecode(text)
    if not text or "\x00" in text:
        raise UnsafePath("open", where, "the name is empty or holds a NUL character")
    if text.startswith("/") or (os.sep != "/" and os.path.isabs(text)):
        raise UnsafePath("open", where, "it is an absolute path, not a name inside the folder")
    parts = [p for p in text.replace(os.sep, "/").split("/") if p not in ("", ".")]
    if not parts or ".." in parts:
        raise UnsafePath("open", where, "the path leads out of the folder")
    return parts


@contextlib.contextmanager
def _folder(root: str | os.PathLike[str], parts: list[str], where: str, *, create: bool) -> Iterator[int]:
    """A descriptor of ``root/parts...``, reached without following any link (the root's own name included)."""
    fd = _open_root(root, where)
    try:
        for part in parts:
            try:
                nxt = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except FileNotFoundError:
                if not create:
                    raise
                with contextlib.suppress(FileExistsError):
                    os.mkdir(part, 0o755, dir_fd=fd)
                try:
                    nxt = os.open(part, _DIR_FLAGS, dir_fd=fd)
                except OSError as exc:
                    raise _explain(exc, fd, part, "open the folder of", where) from None
            except OSError as exc:
                raise _explain(exc, fd, part, "open the folder of", where) from None
            os.close(fd)
            fd = nxt
        yield fd
    finally:
        os.close(fd)


def _root_path(root: str | os.PathLike[str]) -> str:
    # The folders above the root are the user's own (a data root may well be a link); the root's own
    # name is not followed: the sandbox must not be able to swap the folder itself for a link.
    path = os.path.abspath(os.fspath(root))
    parent, name = os.path.split(path)
    return os.path.join(os.path.realpath(parent), name) if name else path


def _open_root(root: str | os.PathLike[str], where: str) -> int:
    target = _root_path(root)
    path = os.path.abspath(os.fspath(root))
    try:
        return os.open(target, _DIR_FLAGS)
    except FileNotFoundError:
        raise
    except OSError:
        problem = None
        with contextlib.suppress(OSError):
            problem = _problem(os.lstat(target), folder=True)
        if problem:
            raise UnsafePath("open", where, f"the folder {path} {problem.removeprefix('it ')}") from None
        raise


def _explain(exc: OSError, dir_fd: int, name: str, action: str, where: str) -> OSError:
    """Why opening ``name`` failed, in words, when it is something other than what was asked for."""
    if isinstance(exc, FileNotFoundError):
        return exc
    try:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except OSError:
        return exc
    problem = _problem(st, folder=action.startswith("open the folder"))
    return UnsafePath(action, where, problem) if problem else exc


def _check_regular(st: os.stat_result, action: str, where: str) -> None:
    problem = _problem(st)
    if problem:
        raise UnsafePath(action, where, problem)


def _problem(st: os.stat_result, folder: bool = False) -> str | None:
    mode = st.st_mode
    if stat.S_ISLNK(mode):
        return "it is a symbolic link"
    if folder:
        return None if stat.S_ISDIR(mode) else "it is not a folder"
    if stat.S_ISDIR(mode):
        return "it is a folder, not a file"
    if stat.S_ISFIFO(mode):
        return "it is a FIFO (named pipe), not a regular file"
    if stat.S_ISSOCK(mode):
        return "it is a socket, not a regular file"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "it is a device, not a regular file"
    if not stat.S_ISREG(mode):
        return "it is not a regular file"
    if st.st_nlink > 1:
        return "it is a hard link (the same file has other names, perhaps outside the folder)"
    return None
