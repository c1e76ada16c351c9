"""The audit hook that runs inside the sandbox kernel (the innermost isolation layer).

This file is loaded *by path* inside the sandbox's Python (which may be another
interpreter without this package), so it imports only the standard library.

It is a guide with friendly messages, not the boundary: a determined program can
get around an audit hook (C extensions do not raise audit events, and pure Python
can reach the hook's closure through a traceback and rewrite it). What the
operating system enforces is the boundary: bubblewrap at ``full``, Landlock at
``full`` and ``reduced`` (``landlock.py``), seccomp and the resource limits.

Why closures everywhere: the hook keeps its state in closure variables captured
at install time, so user code that reaches this module's globals (e.g.
through a traceback frame) cannot switch the checks off by rebinding names.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

PREFIX = "llm-agent sandbox policy"

# libc entry points that would let ctypes code start processes, open connections or
# write files behind the audit hook's back.
_DANGEROUS_SYMBOLS = frozenset(
    """fork vfork _Fork clone clone3 __clone execv execve execvp execvpe execl execle execlp fexecve
    execveat system popen posix_spawn posix_spawnp syscall socket socketpair connect bind sendto sendmsg
    getaddrinfo gethostbyname gethostbyname2 kill killpg tgkill tkill ptrace open open64 openat openat64
    creat creat64 fopen fopen64 freopen unlink unlinkat rename renameat renameat2 remove rmdir mkdir mkdirat
    truncate ftruncate symlink symlinkat link linkat chmod fchmod fchmodat chown lchown fchown fchownat
    dlopen dlmopen dlsym dlvsym mprotect mmap mmap64 prctl setuid seteuid setgid unshare setns mount umount
    umount2 chroot pivot_root seccomp personality process_vm_writev process_vm_readv pidfd_open
    pidfd_send_signal""".split()
)
_DANGEROUS_PREFIXES = ("exec", "posix_spawn", "__libc_", "Py_Exit")

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
# Events that act on a link itself, not on what it points to: only the folder it is in is resolved.
_NOFOLLOW_EVENTS = frozenset(("os.remove", "os.rmdir", "os.rename", "os.link", "os.symlink"))

# event -> positions of (path, dir_fd) arguments that the event writes to
_WRITE_EVENTS: dict[str, tuple[tuple[int, int | None], ...]] = {
    "os.remove": ((0, 1),),
    "os.rmdir": ((0, 1),),
    "os.mkdir": ((0, 2),),
    "os.chmod": ((0, 2),),
    "os.chown": ((0, 3),),
    "os.truncate": ((0, None),),
    "os.utime": ((0, 4),),
    "os.chflags": ((0, None),),
    "os.lchflags": ((0, None),),
    "os.setxattr": ((0, None),),
    "os.removexattr": ((0, None),),
    "os.rename": ((0, 2), (1, 3)),
    "os.link": ((1, 3),),
    "os.symlink": ((1, 2),),
    "shutil.rmtree": ((0, 1),),
    "shutil.copyfile": ((1, None),),
    "shutil.copymode": ((1, None),),
    "shutil.copystat": ((1, None),),
    "shutil.copytree": ((1, None),),
    "shutil.move": ((0, None), (1, None)),
    "shutil.chown": ((0, None),),
    "shutil.make_archive": ((0, None),),
    "shutil.unpack_archive": ((1, None),),
    "sqlite3.connect": ((0, None),),
}
_READ_EVENTS = {"os.listdir": 0, "os.scandir": 0, "shutil.copyfile": 0, "shutil.copytree": 0, "os.link": 0}
_PROCESS_EVENTS = frozenset(
    {
        "os.system",
        "os.exec",
        "os.posix_spawn",
        "os.spawn",
        "os.fork",
        "os.forkpty",
        "subprocess.Popen",
        "pty.spawn",
        "os.startfile",
        "webbrowser.open",
    }
)
_NETWORK_EVENTS = frozenset(
    {
        "socket.connect",
        "socket.bind",
        "socket.sendto",
        "socket.sendmsg",
        "socket.getaddrinfo",
        "socket.gethostbyname",
        "socket.gethostbyname_ex",
        "socket.gethostbyaddr",
        "socket.getnameinfo",
        "urllib.Request",
        "http.client.connect",
    }
)
# Walking the heap would hand user code the hook's own state.
_INTROSPECTION_EVENTS = frozenset({"gc.get_objects", "gc.get_referrers", "gc.get_referents", "sys._current_frames"})


def install(policy: dict[str, Any]) -> None:
    """Install the audit hook described by ``policy`` (built by ``launch_plan.build_launch``).

    Returns nothing on purpose: the caller keeps no handle on the hook.
    """
    sys.addaudithook(_make_hook(policy))


def _make_hook(policy: dict[str, Any]) -> Callable[[str, tuple[Any, ...]], None]:  # noqa: C901  # see below
    # Bind everything the hook uses now; later rebinding of module attributes by user code has no effect.
    # That is why the checks are closures in this one function, and why its complexity is theirs together.
    realpath, abspath, join, getcwd, readlink, split = (
        os.path.realpath,
        os.path.abspath,
        os.path.join,
        os.getcwd,
        os.readlink,
        os.path.split,
    )
    nofollow_events = _NOFOLLOW_EVENTS
    fsdecode, fspath, isinstance_, str_, int_, bytes_, len_ = os.fsdecode, os.fspath, isinstance, str, int, bytes, len
    write_flags = _WRITE_FLAGS
    perm = PermissionError
    sock = __import__("socket")
    # Plain stream/datagram sockets are harmless until they connect, bind or send (all refused below);
    # raw and packet sockets can sniff or forge traffic without any of those.
    allowed_families = frozenset(getattr(sock, n) for n in ("AF_UNIX", "AF_INET", "AF_INET6") if hasattr(sock, n))
    allowed_types = frozenset((sock.SOCK_STREAM, sock.SOCK_DGRAM, -1))
    own_pid = os.getpid()
    own_pgid = os.getpgid(0)
    # Longest matching prefix decides whether a path may be written; no match means not writable.
    write_rules = tuple(sorted(((p, bool(a)) for p, a in policy.get("write_rules", ())), key=lambda r: -len(r[0])))
    write_files = frozenset(policy.get("write_files", ()))
    # Longest matching prefix decides whether a path may be read; no match means readable.
    read_rules = tuple(sorted(((p, bool(a)) for p, a in policy.get("read_rules", ())), key=lambda r: -len(r[0])))
    trusted = tuple(policy.get("trusted_read_roots", ()))
    workspace = policy.get("workspace", "")
    allow_network = bool(policy.get("allow_network", False))
    guard_proc = bool(policy.get("guard_proc", True))
    refused_modules = frozenset(("cffi", "_cffi_backend"))
    loaded_modules = sys.modules
    dangerous, dangerous_prefixes = _DANGEROUS_SYMBOLS, _DANGEROUS_PREFIXES
    describe = _describe_address
    write_events, read_events = _WRITE_EVENTS, _READ_EVENTS
    process_events, network_events, introspection = _PROCESS_EVENTS, _NETWORK_EVENTS, _INTROSPECTION_EVENTS

    def refuse(what: str, detail: str, hint: str = "") -> None:
        raise perm(f"{PREFIX}: {what} ({detail})" + (f". {hint}" if hint else ""))

    def resolve(path: Any, dir_fd: Any = None) -> str | None:
        if isinstance_(path, int_) or path is None:
            return None  # an open file descriptor: it was checked when it was opened
        if isinstance_(path, bytes_):
            path = fsdecode(path)
        elif not isinstance_(path, str_):
            try:
                path = fspath(path)
            except TypeError:
                return None
            if isinstance_(path, bytes_):
                path = fsdecode(path)
        if path[:1] != "/":
            base = getcwd()
            if dir_fd is not None and isinstance_(dir_fd, int_):
                try:
                    base = readlink(f"/proc/self/fd/{dir_fd}")
                except OSError:
                    pass
            path = join(base, path)
        resolved: str = path  # text by now: bytes and path-likes were decoded above
        return resolved

    def under(path: str, roots: tuple[str, ...]) -> bool:
        for root in roots:
            if path == root or path.startswith(root + "/") or root == "/":
                return True
        return False

    def check_write(event: str, path: Any, dir_fd: Any = None) -> None:
        full = resolve(path, dir_fd)
        if full is None:
            return
        if event in nofollow_events:
            folder, name = split(full.rstrip("/"))
            real = join(realpath(folder), name)
        else:
            real = realpath(full)
        if real in write_files or (writable(real) and readable(real)):
            return
        refuse(
            "writing outside the workspace is not allowed",
            f"{event} {full!r}",
            f"Write files under {workspace} (the current folder) or in tempfile.gettempdir() instead",
        )

    def check_read(event: str, path: Any, dir_fd: Any = None) -> None:
        full = resolve(path, dir_fd)
        if full is None:
            return
        if under(abspath(full), trusted):
            return  # fast path: the Python installation and project code are not user-writable here
        real = realpath(full)
        if guard_proc and real.startswith("/proc/"):
            part = real[6:].split("/", 1)[0]
            if part.isdigit() and int_(part) != own_pid:
                refuse("reading other processes is not allowed", f"{event} {full!r}")
        if not readable(real):
            refuse(
                "reading this location is not allowed",
                f"{event} {full!r}",
                "The sandbox sees its own workspace, the project folder and the Python installation only",
            )

    def readable(real: str) -> bool:
        for root, allowed in read_rules:
            if real == root or real.startswith(root + "/") or root == "/":
                return allowed
        return True

    def writable(real: str) -> bool:
        for root, allowed in write_rules:
            if real == root or real.startswith(root + "/") or root == "/":
                return allowed
        return False

    def loaded_library(name: str) -> bool:
        # Re-opening a library that is already mapped adds no new code (threadpoolctl does this).
        try:
            with open("/proc/self/maps") as maps:
                text = maps.read()
        except OSError:
            return False
        base = name.rsplit("/", 1)[-1]
        return ("/" + base) in text or (name in text and name.startswith("/"))

    def hook(event: str, args: tuple[Any, ...]) -> None:  # noqa: C901  # runs on every audit event: one pass, no call per check
        if event == "open":
            path, mode, flags = args
            if isinstance_(mode, str_):
                writing = "w" in mode or "a" in mode or "x" in mode or "+" in mode
            else:
                writing = bool((flags or 0) & write_flags)
            if writing:
                check_write("open", path)
            else:
                check_read("open", path)
            return
        spec = write_events.get(event)
        if spec is not None:
            if event == "sqlite3.connect" and args and args[0] in (":memory:", b":memory:", ""):
                return
            for pos, fd_pos in spec:
                if pos < len_(args):
                    dir_fd = args[fd_pos] if fd_pos is not None and fd_pos < len_(args) else None
                    check_write(event, args[pos], dir_fd)
            read_pos = read_events.get(event)
            if read_pos is not None:
                check_read(event, args[read_pos])
            return
        read_pos = read_events.get(event)
        if read_pos is not None:
            if args:
                check_read(event, args[read_pos] if args[read_pos] is not None else ".")
            return
        if event in process_events:
            detail = repr(args[1] if event == "subprocess.Popen" and len_(args) > 1 else (args[0] if args else ""))
            refuse(
                "starting processes is not allowed",
                f"{event} {detail[:200]}",
                "Do the work in Python inside this kernel (no shell commands, no multiprocessing; use n_jobs=1)",
            )
        if event in ("os.kill", "os.killpg", "signal.pthread_kill"):
            target = args[0]
            if event == "signal.pthread_kill" or target in (0, own_pid) or (event == "os.killpg" and target == own_pgid):
                return
            refuse("signalling other processes is not allowed", f"{event} pid {target}")
        if not allow_network:
            if event in network_events:
                prep = "to" if event.endswith(("connect", "sendto", "sendmsg")) else "for"
                refuse(
                    "network connections are not allowed",
                    f"{event} {prep} {describe(args)}",
                    "Use files in the workspace instead; ask the user to provide the data",
                )
            if event == "socket.__new__" and len_(args) > 2:
                family, kind = args[1], args[2]
                if isinstance_(kind, int_) and kind > 0:
                    kind &= 0xF  # SOCK_NONBLOCK / SOCK_CLOEXEC flags ride along in the type
                if family not in allowed_families or kind not in allowed_types:
                    refuse("raw and packet sockets are not allowed", f"socket family {family}, type {kind}")
        if event == "ctypes.dlopen":
            name = args[0] if args else None
            if name is None or (isinstance_(name, str_) and loaded_library(name)):
                return
            refuse("loading native libraries is not allowed", f"ctypes.dlopen {name!r}")
        if event == "ctypes.dlsym" or event == "ctypes.dlsym/handle":
            name = args[1] if len_(args) > 1 else ""
            if isinstance_(name, str_) and (name in dangerous or name.startswith(dangerous_prefixes)):
                refuse("calling this native function is not allowed", f"{event} {name}")
            return
        if event == "import":
            if args and args[0] in refused_modules and args[0] not in loaded_modules:
                refuse("loading native code through cffi is not allowed", f"import {args[0]}")
            return
        if event in introspection:
            refuse("inspecting the interpreter's internals is not allowed", event)

    return hook


def _describe_address(args: tuple[Any, ...]) -> str:
    # socket.connect/bind/sendto: (socket, address, ...); DNS lookups: (host, port, ...);
    # http.client.connect: (conn, host, port); urllib.Request: (url, data, headers, method)
    if not args:
        return "?"
    first = args[0]
    if isinstance(first, (str, bytes)):
        if len(args) > 1 and isinstance(args[1], (int, str)) and args[1] not in ("", None):
            return f"{first!s}:{args[1]}"
        return str(first)[:200]
    addr = args[1] if len(args) == 2 else args[1:3]
    if isinstance(addr, tuple) and len(addr) >= 2 and isinstance(addr[0], (str, bytes)):
        if isinstance(addr[1], int):
            return f"{addr[0]!s}:{addr[1]}"
        addr = addr[0]
    return str(addr)[:200]
