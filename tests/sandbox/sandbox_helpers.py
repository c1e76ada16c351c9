"""Helpers for sandbox tests: what hostile generated code does."""

from __future__ import annotations

import pytest

from llm_agent_magic.sandbox import ExecutionResult, SandboxKernel
from llm_agent_magic.sandbox.isolation import landlock_abi

#: What generated code can do from pure Python, no privileges: walk a refusal's traceback to the audit
#: hook's frame and rewrite the closure cell its checks call, so every check passes from then on.
DEFEAT_HOOK = """
import os as _os
def _defeat_audit_hook():
    try:
        _os.system("true")
    except PermissionError as exc:
        tb = exc.__traceback__
        while tb is not None:
            if tb.tb_frame.f_code.co_name == "hook":
                fn = tb.tb_frame.f_locals["check_read"]
                dict(zip(fn.__code__.co_freevars, fn.__closure__))["refuse"].cell_contents = lambda *a, **k: None
                return True
            tb = tb.tb_next
    return False
assert _defeat_audit_hook()
import gc
assert gc.get_objects()  # refused by the hook until now
print("audit hook off")
"""


def defeat_hook(sk: SandboxKernel) -> None:
    """Switch the kernel's audit hook off, as hostile code can; what still holds is what the OS enforces."""
    r = sk.execute(DEFEAT_HOOK)
    assert r.stdout == "audit hook off\n", r.text_for_model()


def denied(r: ExecutionResult, *enames: str) -> str:
    """Assert the execution failed with one of ``enames`` (default PermissionError); return the error text."""
    enames = enames or ("PermissionError",)
    assert r.status == "error", r.text_for_model()
    err = r.error
    assert err is not None and err["ename"] in enames, r.text_for_model()
    return err["evalue"]


def need_landlock() -> None:
    if not landlock_abi():
        pytest.skip("Landlock is not available in this kernel")
