"""The Python coder tool: generate, verify, execute in the sandbox, classify errors, retry, rethink."""

from .coder import PythonCoderTool, extract_code
from .errors import ErrorClass, classify_error

__all__ = ["ErrorClass", "PythonCoderTool", "classify_error", "extract_code"]
