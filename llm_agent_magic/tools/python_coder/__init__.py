"""The Python coder tool: generate, verify, execute in the sandbox, classify errors, retry, rethink."""

from .coder import PythonCoderTool, extract_code
from .errors import FailureKind, classify_error

__all__ = ["FailureKind", "PythonCoderTool", "classify_error", "extract_code"]
