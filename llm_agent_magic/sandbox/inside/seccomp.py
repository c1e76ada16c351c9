"""A seccomp filter that stops the sandbox kernel from creating processes, whatever code asks.

The audit hook refuses ``os.fork``/``subprocess`` with a friendly message, but C code (such as
``_posixsubprocess.fork_exec`` behind multiprocessing's 'spawn') forks without raising audit events,
and RLIMIT_NPROC does not apply to root. This filter makes the kernel itself refuse: new processes
(fork, vfork, clone without CLONE_THREAD), exec and io_uring fail with EPERM; threads still work. clone3 answers
ENOSYS so that the C library falls back to clone, whose flags the filter can read.

Without network, it also limits which sockets may be created (``sockets``): unix sockets always;
TCP ones when Landlock refuses TCP connect and bind (``"stream"``); netlink ones (listing network
interfaces); never UDP, raw or packet ones, which Landlock does not cover (a UDP datagram to a DNS
server leaves the machine). Once the kernel has its own sockets, ``install_late`` refuses new unix
and netlink ones as well: Landlock does not cover connecting to another program's unix socket.

Loaded by path inside the sandbox's Python: standard library only. Linux on x86_64 and aarch64.
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
import struct
import sys

# BPF opcodes and seccomp constants (linux/filter.h, linux/seccomp.h)
_LD_W_ABS, _JEQ, _JGE, _JSET, _RET, _AND = 0x20, 0x15, 0x35, 0x45, 0x06, 0x54
_ALLOW = 0x7FFF0000
_ERRNO = 0x00050000
_PR_SET_NO_NEW_PRIVS = 38
_SECCOMP_SET_MODE_FILTER = 1
_SECCOMP_FILTER_FLAG_TSYNC = 1
_CLONE_THREAD = 0x00010000
# offsets in struct seccomp_data
_NR, _ARCH, _ARG0, _ARG1 = 0, 4, 16, 24
_AF_UNIX, _AF_INET, _AF_INET6, _AF_NETLINK, _SOCK_STREAM = 1, 2, 10, 16, 1
SOCKETS = ("all", "stream", "unix")

#: arch -> (AUDIT_ARCH value, seccomp syscall number, syscalls refused, clone, clone3, socket)
_ARCHES = {
    "x86_64": (0xC000003E, 317, {"fork": 57, "vfork": 58, "execve": 59, "execveat": 322}, 56, 435, 41),
    "aarch64": (0xC00000B7, 277, {"execve": 221, "execveat": 281}, 220, 435, 198),
}
# io_uring creates sockets and opens files without the system calls this filter sees.
_IO_URING = {"io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427}
for _arch in _ARCHES.values():
    _arch[2].update(_IO_URING)


def supported() -> bool:
    return sys.platform.startswith("linux") and platform.machine() in _ARCHES


def _program(sockets: str = "all") -> bytes:
    audit_arch, _, refused, clone, clone3, socket_nr = _ARCHES[platform.machine()]
    # (op, jump-if-true label, jump-if-false label, k), or a label naming the next instruction; labels
    # become forward offsets below.
    code: list[tuple[int, str | int, str | int, int] | str] = [
        (_LD_W_ABS, 0, 0, _ARCH),
        (_JEQ, 0, "deny", audit_arch),  # another ABI (i386, x32 via arch) could call fork by another number
        (_LD_W_ABS, 0, 0, _NR),
        (_JGE, "deny", 0, 0x40000000),  # x32 system calls on x86_64
    ]
    for nr in refused.values():
        code.append((_JEQ, "deny", 0, nr))
    if sockets != "all":
        code.append((_JEQ, "socket", 0, socket_nr))
    code += [
        (_JEQ, "nosys", 0, clone3),
        (_JEQ, 0, "allow", clone),
        (_LD_W_ABS, 0, 0, _ARG0),  # clone's flags (low 32 bits)
        (_JSET, "allow", "deny", _CLONE_THREAD),
    ]
    if sockets != "all":
        # netlink: libzmq lists network interfaces through it, and aborts when it cannot
        code += ["socket", (_LD_W_ABS, 0, 0, _ARG0), (_JEQ, "allow", 0, _AF_UNIX), (_JEQ, "allow", 0, _AF_NETLINK)]
        if sockets == "stream":
            code += [
                (_JEQ, "inet", 0, _AF_INET),
                (_JEQ, "inet", "deny", _AF_INET6),
                "inet",
                (_LD_W_ABS, 0, 0, _ARG1),
                (_AND, 0, 0, 0xF),
                (_JEQ, "allow", "deny", _SOCK_STREAM),
            ]
        else:
            code.append((_JEQ, "deny", "deny", 0))
    code += [
        "allow",
        (_RET, 0, 0, _ALLOW),
        "deny",
        (_RET, 0, 0, _ERRNO | errno.EPERM),
        "nosys",
        (_RET, 0, 0, _ERRNO | errno.ENOSYS),
    ]
    labels: dict[str, int] = {}
    program: list[tuple[int, str | int, str | int, int]] = []
    for item in code:
        if isinstance(item, str):
            labels[item] = len(program)
        else:
            program.append(item)

    def rel(target: str | int, here: int) -> int:
        return target if isinstance(target, int) else labels[target] - here - 1

    return b"".join(struct.pack("HBBI", op, rel(jt, i), rel(jf, i), k) for i, (op, jt, jf, k) in enumerate(program))


def _late_program(sockets: str) -> bytes:
    """Once the kernel has its own sockets: no new unix or netlink ones (``socketpair`` still works), so code
    cannot reach the unix sockets of other programs (a container runtime's, an ssh agent's, a desktop bus)."""
    audit_arch, socket_nr = _ARCHES[platform.machine()][0], _ARCHES[platform.machine()][5]
    inet = sockets == "stream"
    program = [
        (_LD_W_ABS, 0, 0, _ARCH),
        (_JEQ, 0, 6 if inet else 4, audit_arch),  # another ABI is refused by the first filter
        (_LD_W_ABS, 0, 0, _NR),
        (_JEQ, 0, 4 if inet else 2, socket_nr),
        (_LD_W_ABS, 0, 0, _ARG0),
    ]
    if inet:
        program += [(_JEQ, 2, 0, _AF_INET), (_JEQ, 1, 0, _AF_INET6)]
    program += [(_RET, 0, 0, _ERRNO | errno.EPERM), (_RET, 0, 0, _ALLOW)]
    return b"".join(struct.pack("HBBI", *ins) for ins in program)


class _Filter(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_char_p)]


def install(sockets: str = "all") -> None:
    """Install the filter on every thread of this process (and all its future threads). Irreversible.

    ``sockets``: which sockets may still be created, ``"all"``, ``"stream"`` (unix and TCP) or ``"unix"``.
    """
    if sockets not in SOCKETS:
        raise ValueError(f"sockets must be one of {SOCKETS}")
    if not supported():
        raise OSError(errno.ENOSYS, f"seccomp filter not available on {sys.platform}/{platform.machine()}")
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS) failed")
    _load(libc, _program(sockets))


def install_late(sockets: str) -> None:
    """After the kernel has made its own sockets: refuse new unix and netlink sockets (unless ``sockets`` is
    ``"all"``: network allowed). Adds to the filter ``install`` put in place; both apply. Irreversible."""
    if sockets not in SOCKETS:
        raise ValueError(f"sockets must be one of {SOCKETS}")
    if sockets != "all":
        _load(ctypes.CDLL(None, use_errno=True), _late_program(sockets))


def _load(libc: ctypes.CDLL, program: bytes) -> None:
    prog = _Filter(len(program) // 8, program)
    nr = _ARCHES[platform.machine()][1]
    if libc.syscall(nr, _SECCOMP_SET_MODE_FILTER, _SECCOMP_FILTER_FLAG_TSYNC, ctypes.byref(prog)) != 0:
        raise OSError(ctypes.get_errno(), "seccomp(SECCOMP_SET_MODE_FILTER) failed")


def _selftest() -> int:
    """Exit 0 if, after install, threads work, fork and exec are refused, and so are UDP sockets but not
    unix or TCP ones (used by the isolation probe)."""
    import socket
    import threading

    install("stream")
    socket.socket(socket.AF_UNIX).close()
    socket.socket(socket.AF_INET, socket.SOCK_STREAM | socket.SOCK_CLOEXEC).close()
    try:
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM).close()
        return 4
    except PermissionError:
        pass
    install_late("stream")
    socket.socket(socket.AF_INET, socket.SOCK_STREAM).close()
    for pair in socket.socketpair():
        pair.close()
    try:
        socket.socket(socket.AF_UNIX).close()
        return 5
    except PermissionError:
        pass
    done = []
    thread = threading.Thread(target=lambda: done.append(True))
    thread.start()
    thread.join()
    try:
        pid = os.fork()
    except PermissionError:
        pass
    else:
        if pid == 0:
            os._exit(0)
        return 2
    try:
        os.execv("/bin/true", ["true"])
    except PermissionError:
        pass
    return 0 if done else 3


if __name__ == "__main__":
    sys.exit(_selftest())
