"""Landlock: the kernel itself limits what the sandbox kernel may read, write and connect to.

The audit hook (``audit_hook.py``) announces the rules with friendly messages, but code can switch it off
from pure Python. Landlock cannot be switched off: once ``install`` returns, this thread and every
thread and process it later creates may only

* read (and list) beneath the ``read`` roots,
* read and write beneath the ``write`` roots,
* read and write the ``devices`` files (``/dev/null`` ...),
* not connect or bind TCP sockets (ABI 4+), unless network is allowed,
* not reach abstract unix sockets or signal processes outside the sandbox (ABI 6+).

No privileges are needed (it works where user namespaces are disabled). Older kernels know fewer
rights: those are dropped from the ruleset, so it still installs with what the kernel can enforce.

Loaded by path inside the sandbox's Python: standard library only. Linux only.
"""

from __future__ import annotations

import ctypes
import errno
import os
import struct
import sys
from typing import Any

# System call numbers are the same on every architecture (the unified table).
_CREATE_RULESET, _ADD_RULE, _RESTRICT_SELF = 444, 445, 446
_CREATE_RULESET_VERSION = 1
_RULE_PATH_BENEATH = 1
_PR_SET_NO_NEW_PRIVS = 38

# Filesystem rights, by the ABI that introduced them.
EXECUTE, WRITE_FILE, READ_FILE, READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
REMOVE_DIR, REMOVE_FILE, MAKE_CHAR, MAKE_DIR, MAKE_REG = 1 << 4, 1 << 5, 1 << 6, 1 << 7, 1 << 8
MAKE_SOCK, MAKE_FIFO, MAKE_BLOCK, MAKE_SYM = 1 << 9, 1 << 10, 1 << 11, 1 << 12
REFER = 1 << 13  # ABI 2
TRUNCATE = 1 << 14  # ABI 3
IOCTL_DEV = 1 << 15  # ABI 5
_FS_BY_ABI = {1: (1 << 13) - 1, 2: (1 << 14) - 1, 3: (1 << 15) - 1, 4: (1 << 15) - 1, 5: (1 << 16) - 1}
# Network rights (ABI 4) and scopes (ABI 6).
BIND_TCP, CONNECT_TCP = 1 << 0, 1 << 1
SCOPE_ABSTRACT_UNIX, SCOPE_SIGNAL = 1 << 0, 1 << 1

#: /proc entries no analysis needs (kernel memory and logs, keys, triggers).
PROC_DENIED = frozenset(
    {
        "kcore",
        "kmsg",
        "kallsyms",
        "kpagecount",
        "kpageflags",
        "kpagecgroup",
        "sysrq-trigger",
        "timer_list",
        "sched_debug",
        "keys",
        "key-users",
    }
)

READ = EXECUTE | READ_FILE | READ_DIR
WRITE = READ | WRITE_FILE | REMOVE_DIR | REMOVE_FILE | MAKE_DIR | MAKE_REG | MAKE_SOCK | MAKE_FIFO | MAKE_SYM | REFER | TRUNCATE
DEVICE = READ_FILE | WRITE_FILE | TRUNCATE | IOCTL_DEV
#: Rights that make sense on a regular file (the kernel refuses directory rights on one).
FILE_RIGHTS = EXECUTE | READ_FILE | WRITE_FILE | TRUNCATE | IOCTL_DEV


def supported() -> bool:
    return sys.platform.startswith("linux")


def _libc() -> Any:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    return libc


def abi_version() -> int:
    """The Landlock ABI this kernel offers; 0 when Landlock is missing or disabled at boot."""
    if not supported():
        return 0
    try:
        value = _libc().syscall(_CREATE_RULESET, None, ctypes.c_size_t(0), ctypes.c_uint32(_CREATE_RULESET_VERSION))
    except (OSError, AttributeError):
        return 0
    return max(int(value), 0)


def handled(abi: int, allow_network: bool = False) -> tuple[int, int, int]:
    """(filesystem rights, network rights, scopes) this ruleset handles on a kernel of ``abi``."""
    fs = _FS_BY_ABI.get(abi, _FS_BY_ABI[5]) if abi >= 1 else 0
    net = (BIND_TCP | CONNECT_TCP) if abi >= 4 and not allow_network else 0
    scoped = (SCOPE_ABSTRACT_UNIX | SCOPE_SIGNAL) if abi >= 6 else 0
    return fs, net, scoped


def install(rules: dict[str, Any]) -> int:
    """Restrict this thread and its future children to ``rules``; returns the ABI used. Irreversible.

    ``rules``: ``read`` and ``write`` (lists of folders or files), ``devices`` (files read and written,
    such as /dev/null), ``proc`` (bool: this process's own /proc entry and the system-wide ones, not other
    processes'), ``allow_network`` (bool). Paths that do not exist are skipped.
    Call it before any other thread exists: threads created earlier keep their freedom.
    """
    abi = abi_version()
    if abi < 1:
        raise OSError(errno.ENOSYS, "Landlock is not available in this kernel (Linux 5.13+ with Landlock enabled)")
    fs, net, scoped = handled(abi, bool(rules.get("allow_network", False)))
    libc = _libc()
    attr = struct.pack("QQQ", fs, net, scoped)
    ruleset = libc.syscall(_CREATE_RULESET, attr, ctypes.c_size_t(len(attr)), ctypes.c_uint32(0))
    if ruleset < 0:
        raise OSError(ctypes.get_errno(), "landlock_create_ruleset failed")
    try:
        for key, rights in (("read", READ), ("write", WRITE), ("devices", DEVICE)):
            for path in rules.get(key, ()):
                _allow(libc, int(ruleset), path, rights & fs)
        for path in proc_paths() if rules.get("proc") else ():
            _allow(libc, int(ruleset), path, READ & fs)
        if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS) failed")
        if libc.syscall(_RESTRICT_SELF, ctypes.c_int(ruleset), ctypes.c_uint32(0)) != 0:
            raise OSError(ctypes.get_errno(), "landlock_restrict_self failed")
    finally:
        os.close(ruleset)
    return abi


def proc_paths() -> list[str]:
    """This process's /proc entry (threads included) and /proc's system-wide files: what other processes
    keep there (environment, command line, memory maps) stays out of reach."""
    found = [os.path.realpath("/proc/self")]
    try:
        entries = list(os.scandir("/proc"))
    except OSError:
        return found
    found += [e.path for e in entries if not e.name.isdigit() and not e.is_symlink() and e.name not in PROC_DENIED]
    return found


def _allow(libc: Any, ruleset: int, path: str, rights: int) -> None:
    try:
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except OSError:
        return  # nothing there to allow
    try:
        if not os.path.isdir(f"/proc/self/fd/{fd}"):
            rights &= FILE_RIGHTS
        # struct landlock_path_beneath_attr is packed: u64 allowed_access, s32 parent_fd
        attr = struct.pack("=Qi", rights, fd)
        if libc.syscall(_ADD_RULE, ctypes.c_int(ruleset), ctypes.c_int(_RULE_PATH_BENEATH), attr, ctypes.c_uint32(0)) != 0:
            raise OSError(ctypes.get_errno(), f"landlock_add_rule failed for {path}")
    finally:
        os.close(fd)


def _selftest() -> int:
    """``python landlock.py EMPTY_FOLDER``: exit 0 and print the ABI if, after install, a file outside the rules
    cannot be read, one inside can be written and TCP cannot connect (used by the isolation probe)."""
    import socket

    folder = sys.argv[1]  # an empty folder the caller removes afterwards
    inside = os.path.join(folder, "inside")
    os.mkdir(inside)
    outside = os.path.join(folder, "outside.txt")
    with open(outside, "w") as fh:
        fh.write("x")
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    abi = install({"read": [sys.prefix, sys.base_prefix, "/usr", "/lib", "/lib64"], "write": [inside]})
    try:
        open(outside).close()
        return 2
    except PermissionError:
        pass
    with open(os.path.join(inside, "ok"), "w") as fh:
        fh.write("ok")
    if abi >= 4:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
            return 3
        except PermissionError:
            pass
    print(abi)
    return 0


if __name__ == "__main__":
    sys.exit(_selftest())
