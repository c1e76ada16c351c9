"""A seccomp filter that stops the sandbox kernel from creating processes, whatever code asks.

The audit hook refuses ``os.fork``/``subprocess`` with a friendly message, but C code (such as
``_posixsubprocess.fork_exec`` behind multiprocessing's 'spawn') forks without raising audit events,
and RLIMIT_NPROC does not apply to root. This filter makes the kernel itself refuse: new processes
(fork, vfork, clone without CLONE_THREAD) and exec fail with EPERM; threads still work. clone3 answers
ENOSYS so that the C library falls back to clone, whose flags the filter can read.

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
_LD_W_ABS, _JEQ, _JGE, _JSET, _RET = 0x20, 0x15, 0x35, 0x45, 0x06
_ALLOW = 0x7FFF0000
_ERRNO = 0x00050000
_PR_SET_NO_NEW_PRIVS = 38
_SECCOMP_SET_MODE_FILTER = 1
_SECCOMP_FILTER_FLAG_TSYNC = 1
_CLONE_THREAD = 0x00010000
# offsets in struct seccomp_data
_NR, _ARCH, _ARG0 = 0, 4, 16

#: arch -> (AUDIT_ARCH value, seccomp syscall number, syscalls refused, clone, clone3)
_ARCHES = {
    "x86_64": (0xC000003E, 317, {"fork": 57, "vfork": 58, "execve": 59, "execveat": 322}, 56, 435),
    "aarch64": (0xC00000B7, 277, {"execve": 221, "execveat": 281}, 220, 435),
}


def supported() -> bool:
    return sys.platform.startswith("linux") and platform.machine() in _ARCHES


def _program() -> bytes:
    audit_arch, _, refused, clone, clone3 = _ARCHES[platform.machine()]
    # (op, jump-if-true label, jump-if-false label, k); labels are resolved to relative offsets below.
    code: list[tuple[int, str | int, str | int, int]] = [
        (_LD_W_ABS, 0, 0, _ARCH),
        (_JEQ, 0, "deny", audit_arch),  # another ABI (i386, x32 via arch) could call fork by another number
        (_LD_W_ABS, 0, 0, _NR),
        (_JGE, "deny", 0, 0x40000000),  # x32 system calls on x86_64
    ]
    for nr in refused.values():
        code.append((_JEQ, "deny", 0, nr))
    code += [
        (_JEQ, "nosys", 0, clone3),
        (_JEQ, 0, "allow", clone),
        (_LD_W_ABS, 0, 0, _ARG0),  # clone's flags (low 32 bits)
        (_JSET, "allow", "deny", _CLONE_THREAD),
    ]
    labels = {"allow": len(code), "deny": len(code) + 1, "nosys": len(code) + 2}
    code += [(_RET, 0, 0, _ALLOW), (_RET, 0, 0, _ERRNO | errno.EPERM), (_RET, 0, 0, _ERRNO | errno.ENOSYS)]

    def rel(target: str | int, here: int) -> int:
        return target if isinstance(target, int) else labels[target] - here - 1

    return b"".join(struct.pack("HBBI", op, rel(jt, i), rel(jf, i), k) for i, (op, jt, jf, k) in enumerate(code))


class _Filter(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_char_p)]


def install() -> None:
    """Install the filter on every thread of this process (and all its future threads). Irreversible."""
    if not supported():
        raise OSError(errno.ENOSYS, f"seccomp filter not available on {sys.platform}/{platform.machine()}")
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS) failed")
    program = _program()
    prog = _Filter(len(program) // 8, program)
    nr = _ARCHES[platform.machine()][1]
    if libc.syscall(nr, _SECCOMP_SET_MODE_FILTER, _SECCOMP_FILTER_FLAG_TSYNC, ctypes.byref(prog)) != 0:
        raise OSError(ctypes.get_errno(), "seccomp(SECCOMP_SET_MODE_FILTER) failed")


def _selftest() -> int:
    """Exit 0 if, after install, threads work and fork and exec are refused (used by the isolation probe)."""
    import threading

    install()
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
